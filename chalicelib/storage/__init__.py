"""AWS adapters of the ingest ports: the bucket (S3) and the ingest queue (SQS)."""
