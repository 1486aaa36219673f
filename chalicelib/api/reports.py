"""Reports: POST /reports (202) and GET /reports/{id}; the worker is api/events.report_jobs."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint
from pydantic import ValidationError as PydanticValidationError

from chalicelib import wiring
from chalicelib.api.bodies import ReportIn
from chalicelib.api.http import identifier, json_body
from chalicelib.api.responses import ReportAccepted, ReportOut
from chalicelib.api.routing import Reply, route
from chalicelib.api.scope import owner, reachable
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.errors import MalformedRequestError, ValidationError
from chalicelib.domain.inputs import describe_errors
from chalicelib.domain.reports import ReportSpec
from chalicelib.domain.timeutil import now_ms, parse_iso
from chalicelib.services import registry, reports
from chalicelib.settings import get_settings

reports_api = Blueprint(__name__)


def parse_spec(body: Any) -> ReportSpec:
    """The report request body as a ReportSpec (400 for a wrong shape, 422 for bad values)."""
    if not isinstance(body, dict):
        raise MalformedRequestError("body must be a JSON object")
    fields = dict(body)
    for name in ("from", "to"):
        value = fields.pop(name, None)
        if not isinstance(value, str):
            raise ValidationError(f"{name}: required, an ISO 8601 timestamp with offset")
        fields[f"{name}_ms"] = parse_iso(value, name)
    # `low` / `high` are the temperature band's shorthand.
    low, high = fields.pop("low", None), fields.pop("high", None)
    if low is not None or high is not None:
        bands = fields.setdefault("bands", {})
        if isinstance(bands, dict):
            bands.setdefault("temperature", {"low": low, "high": high})
    try:
        return ReportSpec.model_validate(fields)
    except PydanticValidationError as exc:
        raise ValidationError(describe_errors(exc).replace("_ms", "")) from None


@route(
    reports_api,
    "/reports",
    "POST",
    Scope.READ,
    body=ReportIn,
    responses={202: (ReportAccepted, "Queued: poll GET /reports/{id}")},
    errors=(404,),
)
def post_report(principal: Principal) -> Reply:
    """Queue a report; 202 {id, status}. The same Idempotency-Key returns the same report."""
    request = reports_api.current_request
    spec = parse_spec(json_body(request))
    tenant = owner(principal)
    repos = wiring.repositories()
    registry.owned_building(repos.registry, tenant, reachable(principal, spec.building))
    for room in spec.rooms or ():
        registry.check_room(repos.registry, tenant, spec.building, room, wiring.known_rooms())
    report = reports.request_report(
        wiring.report_repository(),
        wiring.reports_queue(),
        spec,
        tenant=tenant,
        now_ms=now_ms(),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return Reply(
        202,
        ReportAccepted(id=report.id, status=report.status.value),
        headers={"Location": f"/reports/{report.id}"},
    )


@route(reports_api, "/reports/{report_id}", "GET", Scope.READ, responses={200: ReportOut})
def get_report(principal: Principal, report_id: str) -> ReportOut:
    """Status, timings; once completed a summary, links to the JSON result and the CSV copy,
    and the result itself inline when it is small (at most ROOMTEMP_REPORT_INLINE_BYTES)."""
    view = reports.report_status(
        wiring.report_repository(),
        identifier(report_id, "report_id"),
        tenant=owner(principal),
        inline_bytes=get_settings().report_inline_bytes,
    )
    return ReportOut.of(view)
