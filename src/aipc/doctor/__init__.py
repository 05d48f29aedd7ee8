"""aipc doctor area."""
