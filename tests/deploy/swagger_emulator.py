"""The emulator for the `chalice deploy` tests: infra.emulator, plus API Gateway's Swagger import.

moto 5.2's ImportRestApi/PutRestApi take OpenAPI 3 only (a Swagger 2.0 document is refused with
InvalidOpenApiDocVersionException) and ImportRestApi needs `info.description`; chalice sends
Swagger 2.0 without a description. Both documents keep paths, methods and their
`x-amazon-apigateway-integration` in the same place, which is all moto reads, so the document is
relabelled and passed on: the resources, methods and Lambda integrations moto then holds are
chalice's own.

    python -m tests.deploy.swagger_emulator -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys
from typing import Any


def as_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 document relabelled as OpenAPI 3 for moto, with a description."""
    relabelled = dict(document)
    if relabelled.pop("swagger", None) is not None:
        relabelled["openapi"] = "3.0.1"
    relabelled["info"] = {"description": "", **relabelled.get("info", {})}
    return relabelled


def accept_swagger() -> None:
    """Teach moto's API Gateway backend to import chalice's Swagger."""
    from moto.apigateway.models import APIGatewayBackend

    import_rest_api, put_rest_api = (
        APIGatewayBackend.import_rest_api,
        APIGatewayBackend.put_rest_api,
    )

    def import_swagger(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        return import_rest_api(self, as_openapi(api_doc), fail_on_warnings)

    def put_swagger(
        self: Any,
        function_id: str,
        api_doc: dict[str, Any],
        fail_on_warnings: bool,
        mode: str = "merge",
    ) -> Any:
        return put_rest_api(self, function_id, as_openapi(api_doc), fail_on_warnings, mode)

    APIGatewayBackend.import_rest_api = import_swagger  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = put_swagger  # type: ignore[method-assign]


if __name__ == "__main__":
    from infra.emulator import main

    accept_swagger()
    main(sys.argv[1:])
