"""roomtemp's Chalice app: creates the app and registers the Blueprints. Nothing else at import."""

from chalice import Chalice

from chalicelib.api.access import access_api
from chalicelib.api.analytics import stats_routes
from chalicelib.api.events import events
from chalicelib.api.health import health
from chalicelib.api.readings import readings
from chalicelib.api.registry import registry_api
from chalicelib.api.reports import reports
from chalicelib.api.web import web

app = Chalice(app_name="roomtemp")
app.register_blueprint(health)
app.register_blueprint(readings)
app.register_blueprint(registry_api)
app.register_blueprint(access_api)
app.register_blueprint(events)
app.register_blueprint(web)
app.register_blueprint(stats_routes)
app.register_blueprint(reports)
