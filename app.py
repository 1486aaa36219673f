"""roomtemp's Chalice app: creates the app, registers the Blueprints and the event handlers.

Nothing else happens at import: no AWS client, and no environment read but the decorator arguments
only the deployment knows (the queues' names, the table stream's ARN), each with a safe default:
`make deploy` sets them for `chalice deploy`; `chalice package` keeps the defaults and the merge
template maps them to the stage's resources (infra/template.py).
"""

import os
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, DynamoDBEvent, Rate, SQSEvent

from chalicelib.api import events
from chalicelib.api.access import access_api
from chalicelib.api.alerts import alerts_api
from chalicelib.api.analytics import analytics_api
from chalicelib.api.health import health
from chalicelib.api.imports import imports_api
from chalicelib.api.readings import readings_api
from chalicelib.api.registry import registry_api
from chalicelib.api.reports import reports_api
from chalicelib.api.web import web

app = Chalice(app_name="roomtemp")
for blueprint in (
    health,
    readings_api,
    registry_api,
    access_api,
    web,
    analytics_api,
    reports_api,
    imports_api,
    alerts_api,
):
    app.register_blueprint(blueprint)

# Chalice subscribes each handler to a queue by name: the stage's names under `make deploy`, the
# defaults otherwise (the packaged template maps the defaults to the stage's queues).
INGEST_QUEUE = os.environ.get("ROOMTEMP_INGEST_QUEUE_NAME", "roomtemp-ingest")
REPORTS_QUEUE = os.environ.get("ROOMTEMP_REPORTS_QUEUE_NAME", "roomtemp-reports")
NOTIFY_QUEUE = os.environ.get("ROOMTEMP_NOTIFY_QUEUE_NAME", "roomtemp-notify")


@app.on_sqs_message(queue=INGEST_QUEUE, batch_size=10, name="ingest")
def ingest(event: SQSEvent) -> dict[str, Any]:
    """S3 file notifications, file continuations and readings messages (own Lambda)."""
    return events.ingest_messages(event)


@app.on_sqs_message(queue=REPORTS_QUEUE, batch_size=1, name="compute_report")
def compute_report(event: SQSEvent) -> dict[str, Any]:
    """Compute queued reports (own Lambda)."""
    return events.report_jobs(event)


@app.on_sqs_message(queue=NOTIFY_QUEUE, batch_size=10, name="notify")
def notify(event: SQSEvent) -> dict[str, Any]:
    """Deliver alert transitions to their webhooks and SNS topics (own Lambda)."""
    return events.notify_messages(event)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="silent_rooms")
def silent_rooms(event: CloudWatchEvent) -> dict[str, Any]:
    """Fire the "silent" alert rules of rooms without readings (own Lambda, every minute)."""
    return events.silent_rooms(event)


# The table's stream (NEW_IMAGE). Batch size, batching window, retries, bisection and the failure
# destination are set per stage on the event source mapping (infra/operations.py).
TABLE_STREAM_ARN = os.environ.get(
    "ROOMTEMP_TABLE_STREAM_ARN",
    "arn:aws:dynamodb:us-east-1:000000000000:table/roomtemp/stream/2026-01-01T00:00:00.000",
)


@app.on_dynamodb_record(
    stream_arn=TABLE_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON", name="rollups"
)
def rollups(event: DynamoDBEvent) -> dict[str, Any]:
    """New readings from any ingest path, folded into their rooms' rollups (own Lambda)."""
    return events.table_stream(event)
