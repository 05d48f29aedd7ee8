"""aipc bench area."""
