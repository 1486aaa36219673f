"""roomtemp's Chalice app: creates the app, registers the Blueprints and the event handlers.

Nothing else happens at import: no AWS client, no environment read.
"""

from typing import Any

from chalice import Chalice
from chalice.app import SQSEvent

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
