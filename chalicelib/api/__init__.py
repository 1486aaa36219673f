"""The HTTP edge: Chalice Blueprints, request parsing and error translation."""
