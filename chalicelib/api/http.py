"""Request parsing and the one place where domain errors become HTTP responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from chalice.app import Request, Response

from chalicelib.domain import errors
from chalicelib.domain.inputs import check_identifier
from chalicelib.domain.timeutil import parse_iso

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.MalformedRequestError: 400,
    errors.UnauthenticatedError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.ValidationError: 422,
    errors.StorageUnavailableError: 503,
}

E = TypeVar("E", bound=StrEnum)
# Largest body parsed: a full 1000-reading batch is ~150 KB; API Gateway's own cap is 10 MB.
MAX_BODY_BYTES = 1024 * 1024


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: dict[str, str | list[str]] | None = None,
) -> Response:
    """A JSON error body in Chalice's own shape: {"Code", "Message"} (plus `extra` keys)."""
    body: dict[str, Any] = {"Code": code, "Message": message}
    if extra:
        body.update(extra)
    return Response(body=body, status_code=status, headers=headers or {})


def domain_error_response(exc: errors.DomainError) -> Response:
    """The HTTP answer to a domain error."""
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    headers: dict[str, str | list[str]] = {}
    if isinstance(exc, errors.StorageUnavailableError):
        headers["Retry-After"] = str(exc.retry_after_s)
    return error_response(status, exc.code, exc.message, headers=headers)


def json_body(request: Request) -> Any:
    """The request body as JSON; 413 over MAX_BODY_BYTES (before parsing); 400 if not JSON."""
    raw = request.raw_body
    if not raw:
        raise errors.MalformedRequestError("request body is empty; send JSON")
    if len(raw) > MAX_BODY_BYTES:
        raise errors.PayloadTooLargeError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        return json.loads(text)
    except UnicodeDecodeError:
        raise errors.MalformedRequestError("request body is not UTF-8") from None
    except ValueError as exc:
        raise errors.MalformedRequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.MalformedRequestError("request body is nested too deeply") from None


def query(request: Request) -> Mapping[str, str]:
    """The query string parameters (never None)."""
    return request.query_params or {}


def identifier(value: str, name: str) -> str:
    """A path parameter that must be an identifier (422 otherwise)."""
    return check_identifier(value, name)


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high] (422 otherwise)."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.ValidationError(f"{name}: must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise errors.ValidationError(f"{name}: must be an integer from {low} to {high}")
    return value


def enum_param(params: Mapping[str, str], name: str, enum: type[E], default: E) -> E:
    """A query parameter that must be one of an enum's values (422 otherwise)."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise errors.ValidationError(f"{name}: must be one of {allowed}") from None


def time_param(params: Mapping[str, str], name: str, default: int) -> int:
    """An ISO 8601 (with offset) query parameter as epoch ms (422 otherwise)."""
    raw = params.get(name)
    return default if raw is None else parse_iso(raw, name)
