"""The only place adapters are built: lazily, once per process, cached. Nothing runs at import.

Endpoints come from the AWS SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
so AWS, LocalStack and the embedded emulator need no code branch. Tests replace adapters with
`override(...)` (fakes live in tests/fakes.py) and forget everything with `reset()`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.aws.dynamo import DynamoTable
from chalicelib.aws.retry import RetryPolicy, budget
from chalicelib.domain.models import TableChange
from chalicelib.ports import (
    AlertRepository,
    DelayQueue,
    IdempotencyStore,
    MessageQueue,
    Notifier,
    ReportRepository,
    Repositories,
    UploadStore,
)
from chalicelib.services.access import KeyCache
from chalicelib.services.alerts import Alerting, RulesCache
from chalicelib.services.imports import Budget
from chalicelib.services.ingest import Writer
from chalicelib.services.messages import Consumer
from chalicelib.services.registry import KnownRooms
from chalicelib.settings import get_settings, reset_settings

if TYPE_CHECKING:
    from chalicelib.aws.sqs import SqsQueue

T = TypeVar("T")
_overrides: dict[str, Any] = {}


def _overridable(name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """An adapter factory, cached, that `override(name=...)` replaces."""

    def decorator(build: Callable[[], T]) -> Callable[[], T]:
        cached = cache(build)

        def get() -> T:
            found: T | None = _overrides.get(name)
            return found if found is not None else cached()

        get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        get.__doc__ = build.__doc__
        _factories.append(cached)
        _overridable_names.add(name)
        return get

    return decorator


_factories: list[Any] = []
_overridable_names: set[str] = set()


@cache
def aws_client(service: str, region: str | None = None) -> Any:
    """A boto3 client for `service` (in `region`: default the session's), created on first use.
    botocore's retries are off: every call is retried by the one policy of
    chalicelib/aws/retry.py, within its deadline."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=2,
        read_timeout=10,
        tcp_keepalive=True,
        max_pool_connections=32,
    )
    if service == "s3":
        # Presigned links and upload forms: botocore signs them with SigV2 unless told otherwise,
        # which buckets created since 2020 (and every newer region) refuse. On AWS, virtual
        # addressing makes them regional (<bucket>.s3.<region>.amazonaws.com): the global
        # endpoint answers 307 for a new bucket outside us-east-1, which `curl -F` does not follow.
        # An emulator (AWS_ENDPOINT_URL[_S3]) keeps path style: 127.0.0.1 has no bucket subdomain.
        import os

        emulated = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        style = "path" if emulated else "virtual"
        config = config.merge(Config(signature_version="s3v4", s3={"addressing_style": style}))
    region_name = region or session.region_name or "us-east-1"
    return session.client(service, region_name=region_name, config=config)


# -- retry budgets -----------------------------------------------------------------------------


def api_policy() -> RetryPolicy:
    """The retry policy of an API request."""
    s = get_settings()
    return RetryPolicy(s.api_retry_attempts, s.retry_base_seconds, s.api_retry_cap_seconds)


def worker_policy() -> RetryPolicy:
    """The retry policy of a queue or stream worker (more patient than a request)."""
    s = get_settings()
    return RetryPolicy(s.worker_retry_attempts, s.retry_base_seconds, s.worker_retry_cap_seconds)


@contextmanager
def api_budget() -> Iterator[None]:
    """Run one API request: it answers 503 rather than outlive api_deadline_seconds."""
    with budget(api_policy(), get_settings().api_deadline_seconds):
        yield


@contextmanager
def worker_budget(remaining_ms: Callable[[], int] | None) -> Iterator[None]:
    """Run one worker invocation: its calls give up before the reserve of its remaining time."""
    seconds = None
    if remaining_ms is not None:
        seconds = max(1.0, remaining_ms() / 1000 - get_settings().ingest_reserve_seconds / 2)
    with budget(worker_policy(), seconds):
        yield


# -- DynamoDB ----------------------------------------------------------------------------------


@_overridable("table")
def table() -> DynamoTable:
    """The one table."""
    settings = get_settings()
    return DynamoTable(
        aws_client("dynamodb"), settings.table_name, concurrency=settings.write_concurrency
    )


@_overridable("repositories")
def repositories() -> Repositories:
    """The repositories the handlers use."""
    from chalicelib.aws.readings import DynamoReadingRepository
    from chalicelib.aws.registry import DynamoKeyRepository, DynamoRegistryRepository

    settings = get_settings()
    one = table()
    readings = DynamoReadingRepository(
        one, retention_days=settings.raw_retention_days, rollup_threads=settings.rollup_threads
    )
    return Repositories(
        readings=readings,
        registry=DynamoRegistryRepository(one),
        keys=DynamoKeyRepository(one),
        rollups=readings,
    )


@_overridable("idempotency_store")
def idempotency_store() -> IdempotencyStore:
    """Attempts and answers of requests sent with an Idempotency-Key."""
    from chalicelib.aws.idempotency import DynamoIdempotencyStore

    return DynamoIdempotencyStore(table())


@_overridable("report_repository")
def report_repository() -> ReportRepository:
    """Report status items (the table) and their results (the bucket)."""
    from chalicelib.aws.reports import DynamoReportRepository
    from chalicelib.aws.s3 import S3ObjectStore

    return DynamoReportRepository(
        table(), S3ObjectStore(aws_client("s3"), get_settings().bucket_name)
    )


# -- S3 and SQS --------------------------------------------------------------------------------


@_overridable("object_store")
def object_store() -> UploadStore:
    """The bucket: ingested files, their import statuses, report results, import tickets."""
    from chalicelib.aws.s3 import S3ObjectStore

    settings = get_settings()
    return S3ObjectStore(
        aws_client("s3"), settings.bucket_name, concurrency=settings.bucket_read_concurrency
    )


@_overridable("ingest_queue")
def ingest_queue() -> MessageQueue:
    """The ingest queue: async readings and file continuations."""
    settings = get_settings()
    return _sqs_queue(settings.ingest_queue_url, settings.ingest_queue_name, "the ingest queue")


def _sqs_queue(url: str, name: str, what: str) -> SqsQueue:
    """A queue by its URL, or by its name (looked up on first use)."""
    from chalicelib.aws.sqs import SqsQueue

    return SqsQueue(aws_client("sqs"), url=url, name=name, what=what)


@_overridable("reports_queue")
def reports_queue() -> MessageQueue:
    """The queue of report jobs."""
    settings = get_settings()
    return _sqs_queue(settings.reports_queue_url, settings.reports_queue_name, "the reports queue")


@_overridable("notifier")
def notifier() -> Notifier:
    """Delivers alert notifications: webhooks over HTTPS, SNS topics in their own region."""
    from chalicelib.aws.notify import HttpSnsNotifier

    settings = get_settings()
    return HttpSnsNotifier(
        lambda region: aws_client("sns", region),
        timeout_s=settings.webhook_timeout_seconds,
        deadline_s=notify_deadline_seconds(),
        allow_local=settings.webhooks_allow_local,
    )


@_overridable("notify_queue")
def notify_queue() -> DelayQueue:
    """The queue of alert notifications (one message per transition; retries come back delayed)."""
    settings = get_settings()
    return _sqs_queue(settings.notify_queue_url, settings.notify_queue_name, "the notify queue")


@_overridable("alert_repository")
def alert_repository() -> AlertRepository:
    """Alert rules, their per-room states and the alert events (the one table)."""
    from chalicelib.aws.alerts import DynamoAlertRepository

    return DynamoAlertRepository(table())


@cache
def rules_cache() -> RulesCache:
    """Recently read alert rules per building (see services.alerts.RulesCache)."""
    return RulesCache(get_settings().alert_rules_cache_seconds)


def notify_configured() -> bool:
    """Whether the stage has a notify queue (without one, transitions are kept, not notified)."""
    settings = get_settings()
    return bool(
        "notify_queue" in _overrides or settings.notify_queue_url or settings.notify_queue_name
    )


def notify_deadline_seconds() -> float:
    """The longest one delivery (a webhook's every address and step, or an SNS publish) takes."""
    return 2 * get_settings().webhook_timeout_seconds


def alerting() -> Alerting:
    """What evaluating alerts needs: rules, states and events, readings, the notify queue."""
    return Alerting(
        alerts=alert_repository(),
        readings=repositories().readings,
        queue=notify_queue() if notify_configured() else None,
        cache=rules_cache(),
    )


def table_changes(records: list[dict[str, Any]]) -> list[TableChange]:
    """The table's stream records (as Lambda passes them) as domain changes."""
    from chalicelib.aws.streams import table_changes as decode

    return decode(records)


@cache
def cursor_secret() -> bytes:
    """The key page cursors are signed with: the deployment's secret (Secrets Manager), or one
    given outright; with neither, a random one of this process (its cursors work here only)."""
    settings = get_settings()
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    if settings.cursor_secret_name:
        from chalicelib.aws.secrets import secret_value

        return secret_value(aws_client("secretsmanager"), settings.cursor_secret_name).encode()
    from chalicelib import observability

    observability.logger().warning("no cursor secret configured: cursors work in this process only")
    return secrets.token_bytes(32)


# -- caches and composed use cases -------------------------------------------------------------


@cache
def key_cache() -> KeyCache:
    """Recently checked API keys (see services.access.KeyCache)."""
    return KeyCache(get_settings().auth_cache_seconds)


@cache
def known_rooms() -> KnownRooms:
    """Rooms recently confirmed to exist (see services.registry.KnownRooms)."""
    return KnownRooms(get_settings().registry_cache_seconds)


def writer() -> Writer:
    """The funnel of the bulk and asynchronous ingest paths."""
    return Writer(
        repositories(),
        known=known_rooms(),
        max_future_ms=get_settings().max_future_seconds * 1000,
    )


def ingest_consumer(remaining_ms: Callable[[], int] | None) -> Consumer:
    """The consumer of the ingest queue (the Lambda handler and the local poller)."""
    settings = get_settings()
    return Consumer(
        objects=object_store(),
        queue=ingest_queue(),
        store=writer(),
        budget=Budget(
            remaining_ms,
            reserve_ms=settings.ingest_reserve_seconds * 1000,
            max_rows=settings.ingest_max_rows_per_invocation,
        ),
        chunk_rows=settings.ingest_chunk_rows,
    )


# -- tests -------------------------------------------------------------------------------------


def override(**adapters: Any) -> None:
    """Make every handler use these adapters (by factory name: repositories=..., ...)."""
    unknown = set(adapters) - _overridable_names
    if unknown:
        raise TypeError(f"no adapter named {', '.join(sorted(unknown))}")
    _overrides.update(adapters)
    key_cache().forget()
    known_rooms().forget()
    rules_cache().forget()


def reset() -> None:
    """Forget every override, cached client, adapter and setting (the environment changed)."""
    _overrides.clear()
    aws_client.cache_clear()
    for factory in _factories:
        factory.cache_clear()
    key_cache.cache_clear()
    known_rooms.cache_clear()
    rules_cache.cache_clear()
    cursor_secret.cache_clear()
    reset_settings()


def health_checks() -> dict[str, Callable[[], None]]:
    """What GET /health probes: the table, the bucket and every queue the service sends to (the
    notify queue only where configured: without it transitions are kept, not notified)."""
    checks = {
        "table": repositories().readings.ping,
        "bucket": object_store().ping,
        "ingest_queue": ingest_queue().ping,
        "reports_queue": reports_queue().ping,
    }
    if notify_configured():
        checks["notify_queue"] = notify_queue().ping
    return checks
