"""Bulk and asynchronous ingestion: files from the bucket, messages from the queue (issue 4)."""
