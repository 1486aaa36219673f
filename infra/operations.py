"""Every operational number, once: Lambda memory and timeouts, queue visibility and redrive,
API throttling, the stream consumer's retries, alarm thresholds, log retention, the runtime.

.chalice/config.json is generated from here (`python -m infra.template config`), the deploy
template (infra/template.py) reads it directly, and the table in docs/operations.md is generated
too (`python -m infra.template docs`); tests/deploy/test_operations.py fails when either file
differs from what this module says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APP_NAME = "roomtemp"
API_GATEWAY_STAGE = "api"
# Every function's Lambda runtime: the longest-supported Python that Lambda, chalice 1.34 and this
# machine have (deprecated 2029-06-30; docs/deploy.md#runtime). Chalice deploys the Python it runs
# under, so `make deploy`/`make package` run it in .venv-deploy, built with this Python (Makefile).
LAMBDA_RUNTIME = "python3.13"
# AWS asks an SQS event source's visibility timeout to be >= 6x its function's timeout.
VISIBILITY_PER_TIMEOUT = 6
# Receives before a message moves to its dead-letter queue.
MAX_RECEIVE_COUNT = 5
# A work queue whose oldest message has waited this long alarms (its consumer is stuck).
QUEUE_AGE_ALARM_S = 900
# What the local stack (make run) plays: a consumer's time per batch, and how soon a failed
# message is visible again.
LOCAL_RUNTIME_S = 300
LOCAL_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class Function:
    """One Lambda function's size."""

    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class Stream:
    """How the table's stream reaches its consumer (the event source mapping)."""

    batch_size: int  # records per invocation, at most
    window_s: int  # MaximumBatchingWindowInSeconds: wait this long to fill a batch
    retry_attempts: int  # a failed batch is retried (and bisected) this often...
    max_record_age_s: int  # ...or until its records are this old, then sent to the failure queue


@dataclass(frozen=True)
class Stage:
    """A deployed stage's numbers."""

    api: Function
    ingest: Function  # the ingest queue's consumer (S3 files, messages)
    reports: Function  # the reports queue's consumer
    log_retention_days: int
    xray: bool
    log_level: str
    throttle_rate: int  # API Gateway: steady requests/s
    throttle_burst: int
    api_deadline_s: float  # an API request answers 503 past this (API Gateway stops at 29 s)
    rollups: Function  # the table stream's consumer
    stream: Stream
    # Alerts: the notify queue's consumer (webhooks, SNS) and the silent-rooms schedule.
    notify: Function = Function(memory_mb=256, timeout_s=60)
    silent: Function = Function(memory_mb=256, timeout_s=60)

    def queue_visibility_s(self, consumer: Function) -> int:
        """The visibility timeout of the queue `consumer` reads."""
        return VISIBILITY_PER_TIMEOUT * consumer.timeout_s


STAGES: dict[str, Stage] = {
    "dev": Stage(
        api=Function(memory_mb=512, timeout_s=29),
        ingest=Function(memory_mb=1024, timeout_s=900),
        reports=Function(memory_mb=1024, timeout_s=300),
        log_retention_days=14,
        xray=False,
        log_level="DEBUG",
        throttle_rate=50,
        throttle_burst=100,
        api_deadline_s=15.0,
        rollups=Function(memory_mb=512, timeout_s=120),
        stream=Stream(batch_size=1000, window_s=30, retry_attempts=10, max_record_age_s=86_400),
    ),
    "prod": Stage(
        api=Function(memory_mb=1024, timeout_s=29),
        ingest=Function(memory_mb=1769, timeout_s=900),
        reports=Function(memory_mb=1769, timeout_s=300),
        log_retention_days=90,
        xray=True,
        log_level="INFO",
        throttle_rate=500,
        throttle_burst=1000,
        api_deadline_s=15.0,
        rollups=Function(memory_mb=1024, timeout_s=120),
        stream=Stream(batch_size=10_000, window_s=300, retry_attempts=10, max_record_age_s=86_400),
    ),
}

# make run's stream poller (infra/streams.py): a short window, so rollups follow within seconds.
LOCAL_STREAM = Stream(batch_size=1000, window_s=1, retry_attempts=2, max_record_age_s=3600)

# The Chalice handler names of the functions beside the API (app.py).
CONSUMERS = {
    "ingest": "ingest",
    "compute_report": "reports",
    "rollups": "rollups",
    "notify": "notify",
    "silent_rooms": "silent",
}
# Alert notifications: attempts per target and transition (then the failure is kept on the event),
# the first retry's delay (doubling, at most SQS's 900 s), and how long a rule change takes to reach
# a warm stream consumer (its rules cache).
NOTIFY_MAX_ATTEMPTS = 6
NOTIFY_RETRY_BASE_S = 10
ALERT_RULES_CACHE_S = 60
SILENT_RULES_EVERY_MINUTES = 1


def queue_variable(decorator_queue: str) -> str:
    """The variable app.py reads a queue's name from: roomtemp-ingest, ROOMTEMP_INGEST_QUEUE_NAME
    (the senders' setting of that queue too)."""
    return decorator_queue.upper().replace("-", "_") + "_QUEUE_NAME"


def resource_names(stage: str) -> dict[str, str]:
    """The physical names of a stage's resources (S3 names are global: change `bucket` if taken)."""
    return {
        "table": f"{APP_NAME}-{stage}",
        "bucket": f"{APP_NAME}-data-{stage}",
        "ingest_queue": f"{APP_NAME}-ingest-{stage}",
        "stream_failures": f"{APP_NAME}-stream-failures-{stage}",
        "ingest_dlq": f"{APP_NAME}-ingest-dlq-{stage}",
        "reports_queue": f"{APP_NAME}-reports-{stage}",
        "reports_dlq": f"{APP_NAME}-reports-dlq-{stage}",
        "notify_queue": f"{APP_NAME}-notify-{stage}",
        "notify_dlq": f"{APP_NAME}-notify-dlq-{stage}",
        "api": f"{APP_NAME}-{stage}",
        "alarm_topic": f"{APP_NAME}-alarms-{stage}",
        "cursor_secret": f"{APP_NAME}/{stage}/cursor",
        "functions": f"{APP_NAME}-{stage}",  # the API function; the others add -<name>
    }


def chalice_config() -> dict[str, Any]:
    """.chalice/config.json: the local stage (make run) and every deployed stage."""
    stages: dict[str, Any] = {
        "local": {
            "api_gateway_stage": API_GATEWAY_STAGE,
            "autogen_policy": False,
            "environment_variables": {
                "POWERTOOLS_DEV": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # webhooks to http://127.0.0.1 receivers (docs/webhooks.md)
                "ROOMTEMP_WEBHOOKS_ALLOW_LOCAL": "true",
            },
        }
    }
    for name, stage in STAGES.items():
        names = resource_names(name)
        stages[name] = {
            "api_gateway_stage": API_GATEWAY_STAGE,
            "autogen_policy": False,
            "iam_policy_file": f"policy-{name}.json",
            "lambda_memory_size": stage.api.memory_mb,
            "lambda_timeout": stage.api.timeout_s,
            "log_retention_in_days": stage.log_retention_days,
            "xray": stage.xray,
            "environment_variables": {
                "ROOMTEMP_TABLE_NAME": names["table"],
                "ROOMTEMP_BUCKET_NAME": names["bucket"],
                "ROOMTEMP_INGEST_QUEUE_NAME": names["ingest_queue"],
                "ROOMTEMP_REPORTS_QUEUE_NAME": names["reports_queue"],
                "ROOMTEMP_NOTIFY_QUEUE_NAME": names["notify_queue"],
                "ROOMTEMP_NOTIFY_MAX_ATTEMPTS": str(NOTIFY_MAX_ATTEMPTS),
                "ROOMTEMP_NOTIFY_RETRY_BASE_SECONDS": str(NOTIFY_RETRY_BASE_S),
                "ROOMTEMP_ALERT_RULES_CACHE_SECONDS": str(ALERT_RULES_CACHE_S),
                "ROOMTEMP_API_DEADLINE_SECONDS": str(stage.api_deadline_s),
                "ROOMTEMP_CURSOR_SECRET_NAME": names["cursor_secret"],
                "POWERTOOLS_LOG_LEVEL": stage.log_level,
            },
            "lambda_functions": {
                handler: {
                    "lambda_memory_size": getattr(stage, role).memory_mb,
                    "lambda_timeout": getattr(stage, role).timeout_s,
                }
                for handler, role in CONSUMERS.items()
            },
        }
    return {
        "version": "2.0",
        "app_name": APP_NAME,
        "environment_variables": {
            "POWERTOOLS_SERVICE_NAME": APP_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": "Roomtemp",
        },
        "stages": stages,
    }


def docs_table() -> str:
    """The Markdown table of docs/operations.md (between its `operations` markers)."""
    rows = [
        "| number | " + " | ".join(STAGES) + " |",
        "| --- | " + " | ".join("---" for _ in STAGES) + " |",
    ]

    def row(label: str, values: list[object]) -> None:
        rows.append(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    def size(function: Function) -> str:
        return f"{function.memory_mb} / {function.timeout_s}"

    stages = list(STAGES.values())
    row("API Lambda memory (MB) / timeout (s)", [size(s.api) for s in stages])
    row("API request deadline (s), then 503", [s.api_deadline_s for s in stages])
    row("ingest Lambda memory (MB) / timeout (s)", [size(s.ingest) for s in stages])
    row("ingest queue visibility (s)", [s.queue_visibility_s(s.ingest) for s in stages])
    row("reports Lambda memory (MB) / timeout (s)", [size(s.reports) for s in stages])
    row("reports queue visibility (s)", [s.queue_visibility_s(s.reports) for s in stages])
    row("receives before the dead-letter queue", [MAX_RECEIVE_COUNT for _ in stages])
    row("notify Lambda memory (MB) / timeout (s)", [size(s.notify) for s in stages])
    row("notify queue visibility (s)", [s.queue_visibility_s(s.notify) for s in stages])
    row(
        "alert notification attempts / first retry (s), doubling",
        [f"{NOTIFY_MAX_ATTEMPTS} / {NOTIFY_RETRY_BASE_S}" for _ in stages],
    )
    row(
        "silent-rooms schedule (minutes) / rules cache (s)",
        [f"{SILENT_RULES_EVERY_MINUTES} / {ALERT_RULES_CACHE_S}" for _ in stages],
    )
    row("stream consumer memory (MB) / timeout (s)", [size(s.rollups) for s in stages])
    row("stream batch size (records)", [s.stream.batch_size for s in stages])
    row("stream batching window (s)", [s.stream.window_s for s in stages])
    row(
        "stream retries (bisected) / record age (s), then the failure queue",
        [f"{s.stream.retry_attempts} / {s.stream.max_record_age_s}" for s in stages],
    )
    row(
        "API throttling (requests/s, burst)",
        [f"{s.throttle_rate}, {s.throttle_burst}" for s in stages],
    )
    row("log retention (days)", [s.log_retention_days for s in stages])
    row("log level", [s.log_level for s in stages])
    row("X-Ray tracing", ["on" if s.xray else "off" for s in stages])
    return "\n".join(rows) + "\n"
