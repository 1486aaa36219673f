"""The settings model: imported on first use (pydantic-settings is not needed at `import app`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; every field maps to an ROOMTEMP_* environment variable."""

    model_config = SettingsConfigDict(env_prefix="ROOMTEMP_", frozen=True)

    table_name: str = "roomtemp"
    max_future_seconds: int = 300
    raw_retention_days: int = 0
    # Batch requests (25 writes / 100 reads each) a large write keeps in flight at once.
    write_concurrency: int = 4
    # How long a warm process trusts a key check / a room's existence before reading it again.
    auth_cache_seconds: float = 10.0
    # Longer than a sensor's reporting period, so that a warm process skips the room check.
    registry_cache_seconds: float = 300.0

    # -- the one retry policy (chalicelib/aws/retry.py): API requests and queue workers --
    # An API request answers 503 + Retry-After once this is spent (API Gateway stops at 29 s).
    api_deadline_seconds: float = 15.0
    api_retry_attempts: int = 5
    api_retry_cap_seconds: float = 0.5
    worker_retry_attempts: int = 8
    worker_retry_cap_seconds: float = 5.0
    retry_base_seconds: float = 0.05

    # -- page cursors are signed (HMAC-SHA256) with the deployment's secret --
    cursor_secret_name: str = ""  # its Secrets Manager name or ARN (deployed stages, make run)
    cursor_secret: str = ""  # the secret itself (tests); neither set: one per process

    # -- bulk and asynchronous ingestion --
    bucket_name: str = "roomtemp-data"
    ingest_queue_name: str = "roomtemp-ingest"
    ingest_queue_url: str = ""  # empty: looked up from ingest_queue_name
    ingest_dlq_url: str = ""
    ingest_chunk_rows: int = 1000  # rows validated and written together
    # Invocation time a worker keeps back for its report and hand-off (also its retry deadline).
    ingest_reserve_seconds: int = 60
    ingest_max_rows_per_invocation: int = 0  # 0: no cap (tests force continuation with a cap)
    # POST /imports: how long its upload form is valid, and the largest file it takes. The form
    # is signed with the Lambda role's temporary credentials and stops working when their session
    # ends (about an hour after the function started), so longer values are refused.
    import_upload_seconds: int = Field(900, ge=60, le=3600)
    import_max_bytes: int = 1_073_741_824  # S3 takes up to 5 GB in one POST
    # An uploaded file with no import status after this long shows `stalled`: its notification
    # has used every receive (ingest queue visibility 6 x 900 s x 5 receives, infra/operations.py)
    # and waits in the ingest dead-letter queue.
    import_stall_seconds: int = 27_000
    # Bucket reads in flight at once for one page of GET /imports (up to 3 reads per import).
    bucket_read_concurrency: int = 8
    # -- reports: results and CSV copies go to the same bucket, under reports/ --
    reports_queue_url: str = ""
    reports_queue_name: str = ""  # empty with an empty URL: POST /reports answers 503
    # GET /reports/{id} answers a result inline up to this size; larger ones by link only
    # (a Lambda answer stops at 6 MB).
    report_inline_bytes: int = 1_048_576
    # Parallel rollup refreshes per write request (1 under moto in-process, not thread-safe).
    rollup_threads: int = 8
    # -- alert notifications (chalicelib/aws/notify.py) --
    webhook_timeout_seconds: float = 5.0  # each network step of one webhook POST
    # The local stage only: http://127.0.0.1 receivers and private addresses are allowed.
    webhooks_allow_local: bool = False
    # -- alerts (chalicelib/services/alerts.py; numbers of deployed stages: infra/operations.py) --
    notify_queue_url: str = ""
    notify_queue_name: str = ""  # empty with an empty URL: transitions are kept, not notified
    alert_rules_cache_seconds: float = 60.0  # a changed rule takes effect within this
    notify_max_attempts: int = 6  # tries per target and transition, then the failure is kept
    notify_retry_base_seconds: float = 10.0  # first retry after this, doubling (<= 900 s)
