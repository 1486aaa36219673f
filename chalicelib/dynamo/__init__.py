"""The DynamoDB adapter: keys, item shapes and the repository (boto3 lives here and in wiring)."""
