"""roomtemp's Chalice app: creates the app and registers the Blueprints. Nothing else at import."""

from chalice import Chalice

from chalicelib.api.analytics import stats_routes
from chalicelib.api.health import health
from chalicelib.api.readings import readings
from chalicelib.api.reports import reports

app = Chalice(app_name="roomtemp")
app.register_blueprint(health)
app.register_blueprint(readings)
app.register_blueprint(stats_routes)
app.register_blueprint(reports)
