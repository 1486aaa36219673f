"""What a route documents about itself, recorded by `route()` next to its access rule.

The OpenAPI document (chalicelib/api/openapi.py) is generated from these records and the app's
route table at run time, so a route added anywhere appears in /openapi.json without a hand edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.registry import Scope


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One query string parameter: its JSON Schema, what it means, whether it is required."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False
    example: Any = None


# A response is a pydantic model class (JSON body), a description (no body), a (model,
# description) pair, or a raw OpenAPI response object (a dict), e.g. for text/html.
ResponseSpec = Any


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """The documentation of one route: method + path, its scope and its shapes."""

    path: str
    method: str
    scope: Scope | None
    operation_id: str
    summary: str
    description: str
    tag: str
    body: Any = None  # a pydantic model class, or a type (e.g. a union) TypeAdapter understands
    body_examples: Mapping[str, Any] = field(default_factory=dict)
    responses: Mapping[int, ResponseSpec] = field(default_factory=dict)
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = ()  # statuses beyond those the rule implies (e.g. 409, 413)


def doc_of(
    view: Any,
    path: str,
    method: str,
    scope: Scope | None,
    tag: str,
    *,
    body: Any = None,
    body_examples: Mapping[str, Any] | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
    query: tuple[QueryParam, ...] | list[QueryParam] = (),
    errors: tuple[int, ...] | list[int] = (),
) -> RouteDoc:
    """The RouteDoc of `view`: summary = its docstring's first line, description = the rest."""
    text = (getattr(view, "__doc__", None) or "").strip()
    summary, _, rest = text.partition("\n")
    return RouteDoc(
        path=path,
        method=method,
        scope=scope,
        operation_id=getattr(view, "__name__", f"{method.lower()}_{path}"),
        summary=summary.strip(),
        description=" ".join(line.strip() for line in rest.splitlines() if line.strip()),
        tag=tag,
        body=body,
        body_examples=dict(body_examples or {}),
        responses=dict(responses or {}),
        query=tuple(query),
        errors=tuple(errors),
    )


def limit_param(default: int, high: int) -> QueryParam:
    """`limit`: page size."""
    return QueryParam(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": high, "default": default},
        "page size",
    )


def enum_query(name: str, values: list[str], default: str, description: str) -> QueryParam:
    """A query parameter that is one of `values`."""
    return QueryParam(name, {"type": "string", "enum": values, "default": default}, description)


def time_query(name: str, description: str) -> QueryParam:
    """An ISO 8601 instant with offset."""
    return QueryParam(
        name,
        {"type": "string", "format": "date-time"},
        description,
        example="2026-11-25T10:00:00Z",
    )


CURSOR = QueryParam("cursor", {"type": "string"}, "`next_cursor` of the previous page")
FORCE = QueryParam(
    "force",
    {"type": "string", "enum": ["true", "false"], "default": "false"},
    "true: delete the readings too",
)
