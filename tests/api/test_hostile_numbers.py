"""Numbers no rule foresaw (overflow, underflow, thousands of digits, -0, booleans) get a 4xx or a
rejection of that one value, on every ingest path; never a 500, and never the loss of the valid
readings beside them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.access import Scope
from infra.cli.keys import bootstrap_key

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
HUGE = "9" * 5000  # more digits than int() takes from text
HOSTILE: list[tuple[str, Any]] = [
    ("timestamp", 1e308),
    ("timestamp", -1e308),
    ("timestamp", 10**40),
    ("timestamp", True),
    ("temperature", 1e308),
    ("temperature", -1e308),
    ("temperature", 10**40),
    ("temperature", False),
    ("humidity", 1e-320),
    ("co2", -0.0),
    ("timestamp", 5e-324),
]


def reading(i: int, **extra: Any) -> dict[str, Any]:
    return {"building": "b1", "room": "r1", "timestamp": T0 + i, "temperature": 20.0, **extra}


def post(client: Client, key: str, body: bytes, query: str = "") -> tuple[int, Any]:
    response = client.http.post(
        f"/readings{query}",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    return response.status_code, json.loads(response.body)


@pytest.fixture
def client(aws: Aws) -> Any:
    with Client(app) as test_client:
        key = bootstrap_key("acme", [Scope.INGEST, Scope.READ], "numbers")["key"]
        yield test_client, key


@pytest.mark.parametrize(("field", "value"), HOSTILE)
def test_a_hostile_number_in_one_reading_is_4xx_or_stored_never_500(
    client: Any, field: str, value: Any
) -> None:
    http, key = client
    status, body = post(http, key, json.dumps(reading(0, **{field: value})).encode())
    assert status in (201, 422), body
    if status == 422:
        assert body["Code"] == "ValidationError" and field in body["Message"]


@pytest.mark.parametrize("query", ["", "?async=true"])
def test_a_batch_with_hostile_numbers_stores_every_valid_reading_beside_them(
    client: Any, aws: Aws, query: str
) -> None:
    http, key = client
    valid = [reading(i) for i in range(5)]
    hostile = [reading(10 + i, **{f: v}) for i, (f, v) in enumerate(HOSTILE[:8])]
    text = json.dumps({"readings": [*valid, *hostile]}).replace(
        '"temperature": 20.0}]}', f'"temperature": {HUGE}}}]}}'
    )
    status, body = post(http, key, text.encode(), query)
    assert status in (202, 207), body
    rejected = {r["index"] for r in body["rejected"]}
    assert rejected == set(range(5, 13))
    assert all(r["Code"] == "ValidationError" for r in body["rejected"])
    if query:
        assert body["queued"] == 5
    else:
        assert body["accepted"] == 5
        assert aws.count() == 5


def test_a_message_with_hostile_items_stores_the_rest_and_is_not_retried(aws: Aws) -> None:
    from tests.api.test_ingest_events import run_queue

    bootstrap_key("acme", [Scope.INGEST], "numbers")
    items = [reading(i) for i in range(4)] + [reading(9, timestamp=1e308)]
    body = json.dumps({"tenant": "acme", "readings": items})
    body = body.replace("]}", f', {{"building": "b1", "room": "r1", "co2": {HUGE}}}]}}')
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    with Client(app) as client:
        run_queue(aws, client)  # fails if the message is handed back
    assert aws.count() == 4


def test_a_file_with_hostile_fields_reports_them_and_stores_every_other_row(aws: Aws) -> None:
    from tests.api.test_ingest_events import run_queue

    rows = [f"b1,r1,s1,{T0 + i},21.5" for i in range(6)]
    rows.insert(2, f"b1,r1,s1,{HUGE},21.5")  # line 4: a timestamp of 5000 digits
    rows.insert(4, f"b1,r1,s1,{T0 + 50},{HUGE}")  # line 6: a temperature of 5000 digits
    rows.insert(6, "b1,r1,s1,1e308,21.5")  # line 8: an epoch that overflows
    key = "incoming/acme/hostile.csv"
    aws.drop(key, ("building,room,sensor_id,timestamp,temperature\n" + "\n".join(rows)).encode())
    with Client(app) as client:
        run_queue(aws, client)
    status = aws.report(key)
    assert (status["status"], status["stored"], status["rejected"]) == ("done", 6, 3)
    assert sorted(r["line"] for r in status["rejected_rows"]) == [4, 6, 8]
    assert aws.count() == 6
