"""The one place where errors become HTTP answers: {"Code", "Message"} with a fitting status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice.app import Response

from chalicelib.domain import errors

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


def status_of(error: type[errors.DomainError]) -> int:
    """The HTTP status of a domain error class."""
    return next((s for cls, s in STATUS_BY_ERROR.items() if issubclass(error, cls)), 400)


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


def domain_error_response(
    exc: errors.DomainError, extra: Mapping[str, Any] | None = None
) -> Response:
    """The HTTP answer to a domain error (with Retry-After or WWW-Authenticate where due)."""
    headers: dict[str, str | list[str]] = {}
    if isinstance(exc, errors.StorageUnavailableError):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, errors.UnauthenticatedError):
        headers["WWW-Authenticate"] = 'Bearer realm="roomtemp"'
    return error_response(status_of(type(exc)), exc.code, exc.message, extra=extra, headers=headers)
