"""Route registration with its access rule: every route declares the scope it needs (or PUBLIC).

The rule table (ROUTE_RULES) is what the authorization matrix test is generated from, so a route
registered without a rule cannot exist. The check runs in the view's Lambda, identically in AWS,
`chalice local` and chalice.test.Client; see docs/decisions.md for why not a gateway authorizer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalice.app import Blueprint, Request

from chalicelib import observability
from chalicelib.api.http import domain_error_response
from chalicelib.api.routedoc import QueryParam, ResponseSpec, RouteDoc, doc_of
from chalicelib.domain.errors import DomainError, UnauthenticatedError
from chalicelib.domain.registry import Principal, Scope
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access
from chalicelib.wiring import key_cache, repositories

PUBLIC: Scope | None = None
ROUTE_RULES: dict[tuple[str, str], Scope | None] = {}
# What each route documents (body, responses, query); /openapi.json is generated from it.
ROUTE_DOCS: dict[tuple[str, str], RouteDoc] = {}


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
    repos = repositories()
    return access.authenticate(repos.keys, repos.registry, token_of(request), now_ms(), key_cache())


def route(
    bp: Blueprint,
    path: str,
    method: str,
    scope: Scope | None,
    *,
    body: Any = None,
    body_examples: Mapping[str, Any] | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
    query: Sequence[QueryParam] = (),
    errors: Sequence[int] = (),
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view` for `method path`, behind the `scope` check (PUBLIC: none).

    A protected view receives the caller as its `principal` keyword; domain errors raised anywhere
    below become their HTTP answers here. The optional `body`, `responses`, `query` and `errors`
    only document the route (see chalicelib/api/openapi.py); the view's docstring is its summary.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        def answer(request: Request, params: dict[str, Any]) -> Any:
            try:
                if scope is not None:
                    principal = principal_of(request)
                    access.require(principal, scope)
                    params["principal"] = principal
                return view(**params)
            except DomainError as exc:
                response = domain_error_response(exc)
                if isinstance(exc, UnauthenticatedError):
                    response.headers["WWW-Authenticate"] = 'Bearer realm="roomtemp"'
                return response

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
            query=tuple(query),
            errors=tuple(errors),
        )
        bp.route(path, methods=[method], **options)(handler)
        return view

    return decorator
