"""Route registration with its access rule: every route declares the scope it needs (or PUBLIC).

The rule table (ROUTE_RULES) is what the authorization matrix test is generated from, so a route
registered without a rule cannot exist. The check runs in the view's Lambda, identically in AWS,
`chalice local` and chalice.test.Client; see docs/decisions.md for why not a gateway authorizer.
Every request runs under the API's retry budget (a 503 before API Gateway's 29 s), and every
domain error raised below a view is answered here, through api/errors.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Blueprint, Request, Response
from pydantic import BaseModel, ConfigDict

from chalicelib import observability, wiring
from chalicelib.api.errors import domain_error_response
from chalicelib.api.routedoc import ResponseSpec, RouteDoc, doc_of
from chalicelib.domain.access import Principal, Scope
from chalicelib.domain.errors import DomainError, UnauthenticatedError
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access, idempotency

# A route's rule: the scope it needs, any one of several scopes (a tuple), or PUBLIC.
Rule = Scope | tuple[Scope, ...] | None
PUBLIC: Rule = None
ROUTE_RULES: dict[tuple[str, str], Rule] = {}
# What each route documents (body, responses, query); /openapi.json is generated from it.
ROUTE_DOCS: dict[tuple[str, str], RouteDoc] = {}


class RawJson(BaseModel):
    """An answer already in JSON form (a replayed Idempotency-Key answer): sent as it is."""

    model_config = ConfigDict(frozen=True)

    value: Any


@dataclass(frozen=True, slots=True)
class Reply:
    """A view's answer with a status other than 200, and optional headers."""

    status: int
    body: BaseModel | None = None
    headers: dict[str, str] = field(default_factory=dict)


def idempotent(tenant: str, key: str, fingerprint: str, make: Callable[[int], Reply]) -> Reply:
    """The answer of `make(at)` kept under the tenant's Idempotency-Key `key`: a retry with the
    same key and request gets the first answer back (`Idempotent-Replayed: true`), and a retry
    of an attempt that failed runs again at the first attempt's time."""

    def answer(at: int) -> tuple[int, Any]:
        reply = make(at)
        return reply.status, None if reply.body is None else _json(reply.body)

    status, body, replayed = idempotency.run(
        wiring.idempotency_store(), tenant, key, fingerprint, now_ms(), answer
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Reply(status, RawJson(value=body), headers)


def token_of(request: Request) -> str | None:
    """The API key sent as `Authorization: Bearer <key>` or as `x-api-key: <key>`."""
    headers = request.headers
    authorization = headers.get("authorization") if headers else None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthenticatedError("use Authorization: Bearer <key>")
        return str(value).strip()
    api_key = headers.get("x-api-key") if headers else None
    return str(api_key).strip() if api_key else None


def principal_of(request: Request) -> Principal:
    """Authenticate the request's key."""
    repos = wiring.repositories()
    return access.authenticate(
        repos.keys, repos.registry, token_of(request), now_ms(), wiring.key_cache()
    )


def _json(model: BaseModel) -> Any:
    if isinstance(model, RawJson):
        return model.value
    return model.model_dump(mode="json", by_alias=True)


def to_response(result: Any) -> Any:
    """A view's return value as Chalice answers it."""
    if isinstance(result, Reply):
        body = "" if result.body is None else _json(result.body)
        return Response(body=body, status_code=result.status, headers=dict(result.headers))
    if isinstance(result, BaseModel):
        return _json(result)
    return result


def route(
    bp: Blueprint,
    path: str,
    method: str,
    scope: Rule,
    *,
    body: Any = None,
    body_examples: Mapping[str, Any] | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
    query: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view` for `method path`, behind the `scope` check (a tuple: any one of them;
    PUBLIC: none).

    A protected view receives the caller as its `principal` keyword. It returns a response model
    (200), a Reply (another status), or a chalice Response. The optional `body`, `responses`,
    `query` and `errors` document the route (chalicelib/api/openapi.py); the view's docstring
    is its summary.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        def answer(request: Request, params: dict[str, Any]) -> Any:
            try:
                with wiring.api_budget():
                    if scope is not None:
                        principal = principal_of(request)
                        access.require(principal, scope)
                        params["principal"] = principal
                    return to_response(view(**params))
            except DomainError as exc:
                return domain_error_response(exc)

        @functools.wraps(view)
        def handler(**params: Any) -> Any:
            # Logged with a correlation id here rather than in a Chalice middleware: the same
            # effect for every route, without the middleware chain's cost on each request.
            request = bp.current_request
            return observability.observe_request(request, lambda r: answer(r, params))

        ROUTE_RULES[(path, method)] = scope
        ROUTE_DOCS[(path, method)] = doc_of(
            view,
            path,
            method,
            scope,
            bp._import_name.rsplit(".", 1)[-1],
            body=body,
            body_examples=body_examples,
            responses=responses,
            query=query,
            errors=errors,
        )
        bp.route(path, methods=[method], **options)(handler)
        return view

    return decorator
