"""Domain: readings, units and errors. Imports neither Chalice nor boto3."""
