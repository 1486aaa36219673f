"""Lazily built, cached adapters. Nothing here runs at import time; tests reset or override it.

Endpoints come from the AWS SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
so AWS, LocalStack and the embedded emulator need no code branch.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from chalicelib.ingest.ports import MessageQueue, ObjectStore
from chalicelib.ports import ReadingRepository
from chalicelib.settings import get_settings, reset_settings

_override: ReadingRepository | None = None


@cache
def aws_client(service: str) -> Any:
    """A boto3 client for `service`, created on first use."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=10,
        tcp_keepalive=True,
    )
    return session.client(service, region_name=session.region_name or "us-east-1", config=config)


@lru_cache(maxsize=1)
def _dynamo_repository() -> ReadingRepository:
    from chalicelib.dynamo.repository import DynamoReadingRepository

    settings = get_settings()
    return DynamoReadingRepository(
        aws_client("dynamodb"),
        settings.table_name,
        retention_days=settings.raw_retention_days,
        max_attempts=settings.write_max_attempts,
    )


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    """The bucket of ingested files and their reports (issue 4)."""
    from chalicelib.storage.s3 import S3ObjectStore

    return S3ObjectStore(aws_client("s3"), get_settings().bucket_name)


@lru_cache(maxsize=1)
def ingest_queue() -> MessageQueue:
    """The ingest queue: async readings and file continuations (issue 4)."""
    from chalicelib.storage.sqs import SqsQueue

    settings = get_settings()
    return SqsQueue(
        aws_client("sqs"), url=settings.ingest_queue_url, name=settings.ingest_queue_name
    )


def reading_repository() -> ReadingRepository:
    """The repository the handlers use: an override in tests, else DynamoDB."""
    return _override if _override is not None else _dynamo_repository()


def use_repository(repo: ReadingRepository | None) -> None:
    """Make every handler use `repo` (None: back to DynamoDB)."""
    global _override
    _override = repo


def reset() -> None:
    """Forget every cached client, repository and setting (after the environment changed)."""
    global _override
    _override = None
    aws_client.cache_clear()
    _dynamo_repository.cache_clear()
    object_store.cache_clear()
    ingest_queue.cache_clear()
    reset_settings()
