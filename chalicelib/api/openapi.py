"""The OpenAPI 3.1 document, generated at run time from the app's routes and their RouteDocs.

Paths come from the Chalice route table; scope, body, query and responses from what `route()`
recorded (ROUTE_RULES, ROUTE_DOCS); schemas from the same pydantic models the views validate with,
their `$defs` moved to `components/schemas`. Nothing here is written per route by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, TypeAdapter

from chalicelib.api.responses import ErrorBody
from chalicelib.api.routedoc import RouteDoc, doc_of
from chalicelib.api.routing import ROUTE_DOCS, ROUTE_RULES
from chalicelib.domain.access import Scope, accepted_scopes, effective_scopes
from chalicelib.domain.inputs import IDENTIFIER_PATTERN

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"{([^}+]+)\+?}")
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>` with a roomtemp API key.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The same API key in the `x-api-key` header.",
    },
}
ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or a cursor is not one this API issued.",
    401: "No key, or an unknown, expired or revoked key.",
    403: "The key lacks the scope this route needs, or its tenant is disabled.",
    404: "No such resource for the caller's tenant.",
    409: "Conflicts with what exists (already exists, or still holds data).",
    413: "Too many readings in one request (at most 1000).",
    422: "A value is invalid; the message names the field.",
    503: "Storage is unavailable for a moment; retry after `Retry-After` seconds.",
}
DESCRIPTION = (
    "Building-climate readings in, room averages out. Send the API key as "
    "`Authorization: Bearer <key>` or `x-api-key: <key>`. Every error answers "
    '`{"Code": ..., "Message": ...}`.'
)


class _Components:
    """Collects JSON Schemas; one name, one schema (two different models of one name fail)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: Mapping[str, Any]) -> None:
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"two different schemas are both named {name!r}")
        self.schemas[name] = dict(schema)

    def schema_of(self, kind: Any, mode: str) -> dict[str, Any]:
        """A JSON Schema for `kind` (model class, union, ...): models become $refs."""
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            self.add(name, sub)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.add(kind.__name__, schema)
            return {"$ref": REF.format(model=kind.__name__)}
        return schema


def _scope_note(rule: Scope | tuple[Scope, ...]) -> str:
    wanted = accepted_scopes(rule)
    names = " or ".join(f"`{s.value}`" for s in wanted)
    implied = [
        f"`{s.value}`, which implies `{w.value}`"
        for w in wanted
        for s in Scope
        if s not in wanted and w in effective_scopes(frozenset({s}))
    ]
    if isinstance(rule, Scope) and implied:  # one scope: "(or `admin`, which implies it)"
        implied = [text.replace(f"implies `{rule.value}`", "implies it") for text in implied]
    return (
        f"Needs a key with scope {names}{' (or ' + '; or '.join(implied) + ')' if implied else ''}."
    )


def _error_statuses(doc: RouteDoc, path_params: list[str]) -> list[int]:
    """The error answers a route can give, from its rule and shapes (plus what it declares)."""
    statuses = set(doc.errors)
    if doc.scope is not None:
        statuses |= {401, 403, 503}
        if path_params:
            statuses |= {404, 422}
    if doc.body is not None:
        statuses |= {400, 422}
    if doc.query is not None:
        statuses.add(422)
        if "cursor" in doc.query.model_fields:
            statuses.add(400)
    return sorted(statuses)


def _error_response(status: int, components: _Components) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        "content": {
            "application/json": {"schema": components.schema_of(ErrorBody, "serialization")}
        },
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return response


def _response(status: int, spec: Any, components: _Components) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str):
        return {"description": spec}
    kind, description = spec if isinstance(spec, tuple) else (spec, None)
    if description is None:
        doc = getattr(kind, "__doc__", None) if isinstance(kind, type) else None
        own_doc = doc if doc and doc != BaseModel.__doc__ else None
        description = (own_doc or HTTPStatus(status).phrase).strip().splitlines()[0]
    schema = components.schema_of(kind, "serialization")
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query_parameters(
    model: type[BaseModel] | None, components: _Components
) -> list[dict[str, Any]]:
    """OpenAPI query parameters of a route's query model: one per field, under its alias."""
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        components.add(name, sub)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        spec: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        spec["schema"] = prop
        if description:
            spec["description"] = description
        parameters.append(spec)
    return parameters


def _operation(doc: RouteDoc, components: _Components) -> dict[str, Any]:
    path_params = PATH_PARAM.findall(doc.path)
    operation: dict[str, Any] = {
        "operationId": doc.operation_id,
        "tags": [doc.tag],
        "summary": doc.summary or f"{doc.method} {doc.path}",
    }
    description = doc.description
    if doc.scope is None:
        operation["security"] = []
    else:
        description = f"{description}\n\n{_scope_note(doc.scope)}"
        operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        # One scope, or the list of scopes of which any one will do
        operation["x-required-scope"] = (
            doc.scope.value
            if isinstance(doc.scope, Scope)
            else [s.value for s in accepted_scopes(doc.scope)]
        )
    if description.strip():
        operation["description"] = description.strip()
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": IDENTIFIER_PATTERN},
        }
        for name in path_params
    ]
    parameters.extend(_query_parameters(doc.query, components))
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        media: dict[str, Any] = {"schema": components.schema_of(doc.body, "validation")}
        if doc.body_examples:
            media["examples"] = {k: {"value": v} for k, v in doc.body_examples.items()}
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    responses = {
        str(status): _response(status, spec, components)
        for status, spec in (doc.responses or {200: "OK"}).items()
    }
    for status in _error_statuses(doc, path_params):
        responses.setdefault(str(status), _error_response(status, components))
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _undocumented(path: str, method: str) -> RouteDoc:
    # A route registered without route() still appears; the authorization test flags it anyway.
    return doc_of(None, path, method, ROUTE_RULES.get((path, method)), "undocumented")


def build_document(
    routes: Iterable[tuple[str, str]] | None = None, server_url: str = "/"
) -> dict[str, Any]:
    """The OpenAPI document of `routes` ((path, method) pairs; default: every recorded route)."""
    pairs = sorted(set(ROUTE_DOCS if routes is None else routes))
    components = _Components()
    components.schema_of(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for path, method in pairs:
        doc = ROUTE_DOCS.get((path, method)) or _undocumented(path, method)
        paths.setdefault(path, {})[method.lower()] = _operation(doc, components)
    tags = sorted({op["tags"][0] for ops in paths.values() for op in ops.values()})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "roomtemp", "version": API_VERSION, "description": DESCRIPTION},
        "servers": [{"url": server_url}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def app_routes(route_table: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(path, method) pairs of a Chalice app's `routes` table."""
    return [(path, method) for path, methods in route_table.items() for method in methods]


def base_path(context: Mapping[str, Any] | None, resource_path: str) -> str:
    """The URL prefix the API is served under (API Gateway's `/api` stage; `/` locally)."""
    full = str((context or {}).get("path") or resource_path)
    prefix = full[: -len(resource_path)] if full.endswith(resource_path) else ""
    return prefix.rstrip("/") or "/"
