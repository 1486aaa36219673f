"""schemathesis against /openapi.json of a running local server: every operation, a valid key.

Checks, for every generated request (valid and invalid inputs alike): no 5xx, the status code is
one the operation documents, the content type and headers are the documented ones, and the body
matches the documented schema. Tenant routes go out with an admin+read+ingest key, operator
routes (/tenants) with an operator key, so the answers are the routes' real work, not 403s.

Half of the requests that name a building, room or sensor name one that exists (seeded before,
re-seeded after a DELETE succeeds), so the 200 paths are fuzzed too, not only 404s.

ROOMTEMP_FUZZ_EXAMPLES: examples per operation (default 10 in `make test`; `make fuzz`: 200).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from .conftest import LiveStack

EXAMPLES = int(os.environ.get("ROOMTEMP_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
KNOWN = {"building": "fz-b", "room": "fz-r", "sensor_id": "fz-s"}


def _send(stack: LiveStack, method: str, path: str, body: Any) -> int:
    request = urllib.request.Request(
        stack.base_url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {stack.keys['admin']}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def seed(stack: LiveStack) -> None:
    """The known building, room and sensor (idempotent: 409 means it is there)."""
    b, r, s = KNOWN["building"], KNOWN["room"], KNOWN["sensor_id"]
    for path, body in [
        ("/buildings", {"building": b, "name": "fuzz"}),
        (f"/buildings/{b}/rooms", {"room": r, "name": "fuzz"}),
        ("/sensors", {"sensor_id": s, "name": "fuzz"}),
    ]:
        assert _send(stack, "POST", path, body) in {201, 409}
    reading = {"building": b, "room": r, "sensor_id": s, "temperature": 21.0}
    assert _send(stack, "POST", "/readings", reading) == 201


@dataclass
class Tally:
    examples: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def fuzz(stack: LiveStack, operation: Any, tally: Tally) -> None:
    """EXAMPLES valid and invalid requests to `operation`, each answer checked."""
    label = f"{operation.method.upper()} {operation.path}"
    key = "operator" if operation.path.startswith("/tenants") else "admin"
    headers = {"Authorization": f"Bearer {stack.keys[key]}"}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, known=st.booleans())
    def check(case: Any, known: bool) -> None:
        if known and case.path_parameters:
            for name in case.path_parameters:
                if name in KNOWN:
                    case.path_parameters[name] = KNOWN[name]
        tally.examples[label] += 1
        response = case.call(base_url=stack.base_url, headers=headers, timeout=30)
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as error:
            tally.failures.append(f"{label}: {case.as_curl_command(headers)}\n{error}")
        if operation.method.upper() == "DELETE" and response.status_code == 204:
            seed(stack)

    check()


@pytest.mark.e2e
def test_every_operation_answers_as_documented(live_stack: LiveStack) -> None:
    # Given: the server's own document, and a building, room and sensor that exist
    schema = schemathesis.openapi.from_url(live_stack.base_url + "/openapi.json")
    seed(live_stack)
    operations = [result.ok() for result in schema.get_all_operations()]

    # When: every operation gets EXAMPLES generated requests
    tally = Tally()
    for operation in operations:
        fuzz(live_stack, operation, tally)

    # Then: every answer was one the document promises, and none was a 5xx
    print(
        "\nschema fuzz: "
        + json.dumps(
            {
                "operations": len(operations),
                "examples": sum(tally.examples.values()),
                "examples_per_operation": EXAMPLES,
                "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
                "failures": len(tally.failures),
            }
        )
    )
    assert len(tally.examples) == len(operations), "an operation generated no example"
    assert not any(status >= 500 for status in tally.statuses)
    assert not tally.failures, "\n\n".join(tally.failures[:10])


@pytest.mark.e2e
def test_the_checks_catch_an_undocumented_status(live_stack: LiveStack) -> None:
    # Given: the live document with 404 dropped from GET /buildings/{building}
    with urllib.request.urlopen(live_stack.base_url + "/openapi.json", timeout=30) as response:
        document = json.loads(response.read())
    del document["paths"]["/buildings/{building}"]["get"]["responses"]["404"]
    schema = schemathesis.openapi.from_dict(document)
    operation = schema["/buildings/{building}"]["GET"]
    headers = {"Authorization": f"Bearer {live_stack.keys['admin']}"}

    # When: a building that does not exist is asked for
    case = operation.Case(path_parameters={"building": "no-such-building"})
    response = case.call(base_url=live_stack.base_url, headers=headers, timeout=30)

    # Then: the answer is a 404, and the fuzz test's checks reject it as undocumented
    assert response.status_code == 404
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        case.validate_response(response, checks=CHECKS, headers=headers)
