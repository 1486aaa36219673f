"""Structured logs and CloudWatch metrics (Powertools), created on first use.

Importing this module costs nothing: Powertools is imported when the first request is logged or
the first metric recorded, so `import app` stays as cheap as Chalice + boto3 + pydantic.
Logs are JSON with a correlation id per request (the API Gateway request id); with
POWERTOOLS_DEV=true (the `local` stage) they are one readable line each. Keys (Authorization,
x-api-key) and payloads are never logged: only method, route, status and duration.
Metrics are CloudWatch EMF lines written to stdout (Lambda ships them to CloudWatch); they are off
outside Lambda unless POWERTOOLS_METRICS_DISABLED=false.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Sized
from functools import cache
from typing import Any, Literal, Protocol

SERVICE = "roomtemp"
NAMESPACE = "Roomtemp"
IngestPath = Literal["HTTP", "S3", "SQS"]
INGEST_PATHS: tuple[str, ...] = ("HTTP", "S3", "SQS")


class IngestCounts(Protocol):
    """What an ingest reports (services.IngestOutcome has this shape)."""

    @property
    def accepted(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def rejected(self) -> Sized | int: ...


def _flag(name: str) -> bool | None:
    value = os.environ.get(name)
    return None if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _plain_line(record: dict[str, Any]) -> str:
    """One readable line for local runs: time level message key=value ..."""
    head = f"{record.pop('timestamp', '')} {record.pop('level', '')} {record.pop('message', '')}"
    for noisy in ("location", "service", "sampling_rate"):
        record.pop(noisy, None)
    return " ".join([head, *(f"{key}={value}" for key, value in record.items())])


@cache
def logger() -> Any:
    """The process's Powertools Logger (JSON; a plain line per record in dev mode)."""
    with warnings.catch_warnings():  # Powertools warns that POWERTOOLS_DEV is on; we know
        warnings.simplefilter("ignore")
        from aws_lambda_powertools import Logger
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        service = os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE)
        formatter = (
            LambdaPowertoolsFormatter(json_serializer=_plain_line)  # type: ignore[arg-type]
            if _flag("POWERTOOLS_DEV")
            else None
        )
        log = Logger(service=service, logger_formatter=formatter)
    # The std logger named like the service is also Chalice's app.log: keep only our handler, so
    # a record is written once and Chalice's own messages get the JSON shape and correlation id.
    std = logging.getLogger(service)
    for handler in list(std.handlers):
        if handler is not log.registered_handler:
            std.removeHandler(handler)
    return log


def reset_logger() -> None:
    """Forget the logger, its handler and the metrics switch (tests change the environment)."""
    logger.cache_clear()
    metrics_enabled.cache_clear()
    std = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
    std.handlers.clear()
    std.setLevel(logging.NOTSET)
    for attribute in ("init", "powertools_handler", "logger_handler"):
        if hasattr(std, attribute):
            delattr(std, attribute)


@cache
def metrics_enabled() -> bool:
    """EMF metrics are written in Lambda, or wherever POWERTOOLS_METRICS_DISABLED=false says so."""
    disabled = _flag("POWERTOOLS_METRICS_DISABLED")
    if disabled is not None:
        return not disabled
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ and not _flag("POWERTOOLS_DEV")


def _count(value: Sized | int) -> int:
    return value if isinstance(value, int) else len(value)


def record_ingest(path: IngestPath, outcome: IngestCounts, seconds: float) -> None:
    """Emit readings accepted/duplicates/rejected and ingest latency, with dimension path."""
    if path not in INGEST_PATHS:
        raise ValueError(f"path must be one of {INGEST_PATHS}")
    accepted, duplicates = outcome.accepted, outcome.duplicates
    rejected = _count(outcome.rejected)
    log = logger()
    if log.log_level <= logging.DEBUG:
        log.debug("ingest", path=path, accepted=accepted, duplicates=duplicates, rejected=rejected)
    if not metrics_enabled():
        return
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    # Ephemeral: its own metric set, flushed at once, so paths never share a dimension set.
    metrics = EphemeralMetrics(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
    )
    metrics.add_dimension(name="path", value=path)
    metrics.add_metric(name="ReadingsAccepted", unit=MetricUnit.Count, value=accepted)
    metrics.add_metric(name="ReadingsDuplicate", unit=MetricUnit.Count, value=duplicates)
    metrics.add_metric(name="ReadingsRejected", unit=MetricUnit.Count, value=rejected)
    metrics.add_metric(
        name="IngestLatency", unit=MetricUnit.Milliseconds, value=round(seconds * 1000, 3)
    )
    metrics.flush_metrics()


def request_id(request: Any) -> str:
    """The API Gateway request id (chalice local and tests may lack one: a fresh uuid)."""
    context = getattr(request, "context", None) or {}
    value = context.get("requestId") if isinstance(context, dict) else None
    return str(value) if value else str(uuid.uuid4())


SLOW_REQUEST_MS = 1000.0


def observe_request(request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Give every log line of a request its correlation id, and log the request itself.

    Failed (4xx/5xx) and slow requests are logged at INFO; the rest at DEBUG — a JSON line per
    successful request would cost more than the request (API Gateway's access log and the
    metrics count those). Never headers or bodies.
    """
    log = logger()
    # Per thread: `chalice local` (make run, the container) serves requests on parallel threads.
    log.thread_safe_append_keys(correlation_id=request_id(request))
    route = request.path  # the route template (/buildings/{building}/...), as API Gateway has it
    started = time.perf_counter()
    try:
        response = get_response(request)
    except Exception:
        log.exception("request failed", method=request.method, route=route, status=500)
        raise
    finally:
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    status = getattr(response, "status_code", 200)  # a view's plain dict is answered 200
    noteworthy = status >= 400 or elapsed_ms >= SLOW_REQUEST_MS
    (log.info if noteworthy else log.debug)(
        "request", method=request.method, route=route, status=status, duration_ms=elapsed_ms
    )
    return response
