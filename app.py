"""roomtemp's Chalice app: creates the app, registers the Blueprints and the event handlers.

Nothing else happens at import: no AWS client, and no environment read but the table stream's
ARN, which only the deployment knows (infra/deploy.py sets it; a placeholder otherwise).
"""

import os
from typing import Any

from chalice.app import Chalice, DynamoDBEvent, SQSEvent

from chalicelib.api import events
from chalicelib.api.access import access_api
from chalicelib.api.analytics import analytics_api
from chalicelib.api.health import health
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
):
    app.register_blueprint(blueprint)

# The queues' names as deployed (Chalice subscribes each handler by name; the deploy template
# maps them to the stage's queues); senders use their URLs from the environment.
INGEST_QUEUE = "roomtemp-ingest"
REPORTS_QUEUE = "roomtemp-reports"


@app.on_sqs_message(queue=INGEST_QUEUE, batch_size=10, name="ingest")
def ingest(event: SQSEvent) -> dict[str, Any]:
    """S3 file notifications, file continuations and readings messages (own Lambda)."""
    return events.ingest_messages(event)


@app.on_sqs_message(queue=REPORTS_QUEUE, batch_size=1, name="compute_report")
def compute_report(event: SQSEvent) -> dict[str, Any]:
    """Compute queued reports (own Lambda)."""
    return events.report_jobs(event)


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
