"""What a route documents about itself, recorded by `route()` next to its access rule.

The OpenAPI document (chalicelib/api/openapi.py) is generated from these records and the app's
route table at run time, so a route added anywhere appears in /openapi.json without a hand edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from chalicelib.domain.access import Scope

# A response is a pydantic model class (JSON body), a description (no body), a (model,
# description) pair, or a raw OpenAPI response object (a dict), e.g. for text/html.
ResponseSpec = Any


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """The documentation of one route: method + path, its scope and its shapes."""

    path: str
    method: str
    scope: Scope | tuple[Scope, ...] | None  # a tuple: any one of them
    operation_id: str
    summary: str
    description: str
    tag: str
    body: Any = None  # a pydantic model class, or a type (e.g. a union) TypeAdapter understands
    body_examples: Mapping[str, Any] = field(default_factory=dict)
    responses: Mapping[int, ResponseSpec] = field(default_factory=dict)
    query: type[BaseModel] | None = None  # the route's query model (chalicelib/api/queries.py)
    errors: tuple[int, ...] = ()  # statuses beyond those the rule implies (e.g. 409, 413)


def doc_of(
    view: Any,
    path: str,
    method: str,
    scope: Scope | tuple[Scope, ...] | None,
    tag: str,
    *,
    body: Any = None,
    body_examples: Mapping[str, Any] | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
    query: type[BaseModel] | None = None,
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
        query=query,
        errors=tuple(errors),
    )
