"""Runtimes: one module per way to run a model (genai, openvino, npu) behind one interface (issue 13)."""
