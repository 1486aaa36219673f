"""Every boto3 call: the table, the bucket, the queues (keys, items, adapters); one retry policy."""
