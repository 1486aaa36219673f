"""Reading a request: the JSON body, path identifiers, query strings and bodies into models."""

from __future__ import annotations

from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from chalicelib.domain import errors
from chalicelib.domain.inputs import check_identifier, describe_errors, load_json

M = TypeVar("M", bound=BaseModel)
# Largest body parsed: a full 1000-reading batch is ~150 KB; API Gateway's own cap is 10 MB.
MAX_BODY_BYTES = 1024 * 1024


def json_body(request: Request) -> Any:
    """The request body as JSON; 413 over MAX_BODY_BYTES (before parsing); 400 if not JSON."""
    raw = request.raw_body
    if not raw:
        raise errors.MalformedRequestError("request body is empty; send JSON")
    if len(raw) > MAX_BODY_BYTES:
        raise errors.PayloadTooLargeError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        return load_json(text)
    except UnicodeDecodeError:
        raise errors.MalformedRequestError("request body is not UTF-8") from None
    except ValueError as exc:
        raise errors.MalformedRequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.MalformedRequestError("request body is nested too deeply") from None


def identifier(value: str, name: str) -> str:
    """A path parameter that must be an identifier (422 otherwise)."""
    return check_identifier(value, name)


def parse_query(model: type[M], request: Request) -> M:
    """The query string as `model`; 422 naming the parameter otherwise."""
    return _validate(model, dict(request.query_params or {}))


def parse_body(model: type[M], body: Any) -> M:
    """A JSON body as `model`; 422 with a readable message otherwise."""
    if not isinstance(body, dict):
        raise errors.ValidationError("body must be a JSON object")
    return _validate(model, body)


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise errors.ValidationError(describe_errors(exc)) from None
