"""aipc build area."""
