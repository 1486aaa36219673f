"""Reports: POST /reports (202), GET /reports/{id}, and the SQS worker that computes them."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice.app import Blueprint, Response, SQSEvent
from pydantic import ValidationError as PydanticValidationError

from chalicelib.api.bodies import ReportIn
from chalicelib.api.http import json_body
from chalicelib.api.responses import ReportAccepted
from chalicelib.api.routing import route
from chalicelib.domain.errors import MalformedRequestError, ValidationError
from chalicelib.domain.inputs import describe_errors
from chalicelib.domain.registry import Principal, Scope
from chalicelib.domain.reports import ReportSpec
from chalicelib.domain.timeutil import now_ms, parse_iso
from chalicelib.services import access, registry
from chalicelib.services import reports as report_service
from chalicelib.wiring import (
    known_rooms,
    report_queue,
    report_repository,
    repositories,
    rollup_repository,
)

reports = Blueprint(__name__)
# The deployed queue's name (Chalice wires the event source by name); senders use its URL from
# ROOMTEMP_REPORTS_QUEUE_URL.
REPORTS_QUEUE = "roomtemp-reports"
_log = logging.getLogger(__name__)


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
    reports,
    "/reports",
    "POST",
    Scope.READ,
    body=ReportIn,
    responses={202: (ReportAccepted, "Queued: poll GET /reports/{id}")},
    errors=(404,),
)
def post_report(principal: Principal) -> Response:
    """Queue a report; 202 {id, status}. The same Idempotency-Key returns the same report."""
    request = reports.current_request
    spec = parse_spec(json_body(request))
    tenant = access.tenant_of(principal)
    repos = repositories()
    registry.owned_building(repos.registry, tenant, spec.building)
    for room in spec.rooms or ():
        registry.check_room(repos.registry, tenant, spec.building, room, known_rooms())
    report = report_service.request_report(
        report_repository(),
        report_queue(),
        spec,
        tenant=tenant,
        now_ms=now_ms(),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    body = {"id": report.id, "status": report.status.value}
    return Response(body=body, status_code=202, headers={"Location": f"/reports/{report.id}"})


@route(
    reports,
    "/reports/{report_id}",
    "GET",
    Scope.READ,
    responses={200: "Status, timings and, once completed, the result and a CSV link"},
    errors=(404,),
)
def get_report(principal: Principal, report_id: str) -> dict[str, Any]:
    """Status, timings, and once completed the result and a CSV link."""
    tenant = access.tenant_of(principal)
    return report_service.report_status(report_repository(), report_id, tenant=tenant)


@reports.on_sqs_message(queue=REPORTS_QUEUE, batch_size=1)
def compute_report(event: SQSEvent) -> None:
    """Compute each queued report; raising hands the message back to SQS for a later retry."""
    for record in event:
        try:
            report_id = str(json.loads(record.body)["id"])
        except (ValueError, KeyError, TypeError):
            _log.warning("dropping a malformed report message")
            continue
        attributes = record.to_dict().get("attributes") or {}
        report_service.run_report(
            report_repository(),
            rollup_repository(),
            report_id,
            clock=now_ms,
            delivery=int(attributes.get("ApproximateReceiveCount", 1)),
        )
