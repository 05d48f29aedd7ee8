"""aipc npu area."""
