"""aipc verify area."""
