"""roomtemp: building-climate readings on Chalice and DynamoDB."""
