"""Lazily built, cached adapters. Nothing here runs at import time; tests reset or override it.

Endpoints come from the AWS SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
so AWS, LocalStack and the embedded emulator need no code branch.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, cast

from chalicelib.ports import (
    MessageQueue,
    ObjectStore,
    ReadingRepository,
    ReportQueue,
    ReportRepository,
    Repositories,
    RollupRepository,
)
from chalicelib.services.access import KeyCache
from chalicelib.services.registry import KnownRooms
from chalicelib.settings import get_settings, reset_settings

_override: Repositories | None = None
_report_override: tuple[ReportRepository, ReportQueue] | None = None


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


@cache
def _dynamo_repositories() -> Repositories:
    from chalicelib.aws.readings import DynamoReadingRepository
    from chalicelib.aws.registry import DynamoKeyRepository, DynamoRegistryRepository

    settings = get_settings()
    client = aws_client("dynamodb")
    return Repositories(
        readings=DynamoReadingRepository(
            client,
            settings.table_name,
            retention_days=settings.raw_retention_days,
            max_attempts=settings.write_max_attempts,
            concurrency=settings.write_concurrency,
            rollup_threads=settings.rollup_threads,
        ),
        registry=DynamoRegistryRepository(client, settings.table_name),
        keys=DynamoKeyRepository(client, settings.table_name),
    )


def in_memory_repositories(readings: ReadingRepository | None = None) -> Repositories:
    """Fresh in-memory repositories (tests, benchmarks)."""
    from tests.fakes import (
        InMemoryKeyRepository,
        InMemoryReadingRepository,
        InMemoryRegistryRepository,
    )

    return Repositories(
        readings=readings or InMemoryReadingRepository(),
        registry=InMemoryRegistryRepository(),
        keys=InMemoryKeyRepository(),
    )


def repositories() -> Repositories:
    """The repositories the handlers use: an override in tests, else DynamoDB."""
    return _override if _override is not None else _dynamo_repositories()


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    """The bucket of ingested files and their reports (issue 4)."""
    from chalicelib.aws.s3 import S3ObjectStore

    return S3ObjectStore(aws_client("s3"), get_settings().bucket_name)


@lru_cache(maxsize=1)
def ingest_queue() -> MessageQueue:
    """The ingest queue: async readings and file continuations (issue 4)."""
    from chalicelib.aws.sqs import SqsQueue

    settings = get_settings()
    return SqsQueue(
        aws_client("sqs"), url=settings.ingest_queue_url, name=settings.ingest_queue_name
    )


def reading_repository() -> ReadingRepository:
    """The reading repository the handlers use."""
    return repositories().readings


def use_repositories(repos: Repositories | None) -> None:
    """Make every handler use `repos` (None: back to DynamoDB)."""
    global _override
    _override = repos
    key_cache().forget()
    known_rooms.cache_clear()


@cache
def key_cache() -> KeyCache:
    """Recently checked API keys (see access.KeyCache)."""
    return KeyCache(get_settings().auth_cache_seconds)


@cache
def known_rooms() -> KnownRooms:
    """Rooms recently confirmed to exist (see registry.KnownRooms)."""
    return KnownRooms(get_settings().registry_cache_seconds)


def rollup_repository() -> RollupRepository:
    """The rollup side of the same repository (both adapters implement both ports)."""
    return cast(RollupRepository, reading_repository())


@lru_cache(maxsize=1)
def _aws_reports() -> tuple[ReportRepository, ReportQueue]:
    from chalicelib.aws.reports import DynamoReportRepository, SqsReportQueue

    settings = get_settings()
    repo = DynamoReportRepository(
        aws_client("dynamodb"), settings.table_name, aws_client("s3"), settings.bucket_name
    )
    return repo, SqsReportQueue(aws_client("sqs"), settings.reports_queue_url)


def report_repository() -> ReportRepository:
    """Where reports and their results are kept: an override in tests, else DynamoDB + S3."""
    return (_report_override or _aws_reports())[0]


def report_queue() -> ReportQueue:
    """Where report jobs are queued: an override in tests, else SQS."""
    return (_report_override or _aws_reports())[1]


def use_reports(repo: ReportRepository | None, queue: ReportQueue | None = None) -> None:
    """Make every handler use these report adapters (None: back to AWS)."""
    global _report_override
    _report_override = None if repo is None or queue is None else (repo, queue)


def reset() -> None:
    """Forget every cached client, repository and setting (after the environment changed)."""
    global _override, _report_override
    _override = None
    _report_override = None
    aws_client.cache_clear()
    _dynamo_repositories.cache_clear()
    key_cache.cache_clear()
    known_rooms.cache_clear()
    object_store.cache_clear()
    ingest_queue.cache_clear()
    _aws_reports.cache_clear()
    reset_settings()
