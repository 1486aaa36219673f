"""Lazily built, cached adapters. Nothing here runs at import time; tests reset or override it.

Endpoints come from the AWS SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
so AWS, LocalStack and the embedded emulator need no code branch.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, cast

from chalicelib.ports import ReadingRepository, ReportQueue, ReportRepository, RollupRepository
from chalicelib.settings import get_settings, reset_settings

_override: ReadingRepository | None = None
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


@lru_cache(maxsize=1)
def _dynamo_repository() -> ReadingRepository:
    from chalicelib.dynamo.repository import DynamoReadingRepository

    settings = get_settings()
    return DynamoReadingRepository(
        aws_client("dynamodb"),
        settings.table_name,
        retention_days=settings.raw_retention_days,
        max_attempts=settings.write_max_attempts,
        rollup_threads=settings.rollup_threads,
    )


def reading_repository() -> ReadingRepository:
    """The repository the handlers use: an override in tests, else DynamoDB."""
    return _override if _override is not None else _dynamo_repository()


def use_repository(repo: ReadingRepository | None) -> None:
    """Make every handler use `repo` (None: back to DynamoDB)."""
    global _override
    _override = repo


def rollup_repository() -> RollupRepository:
    """The rollup side of the same repository (both adapters implement both ports)."""
    return cast(RollupRepository, reading_repository())


@lru_cache(maxsize=1)
def _aws_reports() -> tuple[ReportRepository, ReportQueue]:
    from chalicelib.dynamo.reports import DynamoReportRepository, SqsReportQueue

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
    _dynamo_repository.cache_clear()
    _aws_reports.cache_clear()
    reset_settings()
