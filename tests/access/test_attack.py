"""Tenant B attacks tenant A, generated: every route, with A's ids, lookalike keys and hostile
values in every place (path, query string, body, headers), stolen and forged cursors.

B holds a building of the same id as A's ("a-hq", room "r1"), so every name A uses also means
something in B's namespace. Each answer must be below 500 and carry nothing of A's (A's data holds
marker values B never sends); A's stored items must be unchanged after every request; and every
report B queued, once computed, holds nothing of A's either.

ROOMTEMP_ATTACK_EXAMPLES: requests tried (default 250 in `make test`; `make fuzz`: 3000).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from access_world import BUILDING_A, ROOM_A, SENSOR_A, TENANT_A, TENANT_B, Api
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_access_matrix import SAMPLES

from app import app
from chalicelib import wiring
from chalicelib.domain.access import Scope
from chalicelib.domain.timeutil import now_ms
from chalicelib.services import access
from chalicelib.services import reports as report_service
from tests.fakes import InMemoryQueue, InMemoryReportRepository
from tests.streams import drain_table

EXAMPLES = int(os.environ.get("ROOMTEMP_ATTACK_EXAMPLES", "250"))
ROUTES = sorted((path, method) for path, methods in app.routes.items() for method in methods)

# What A stores and B never sends: finding one in an answer to B is a leak.
A_NAME, A_ROOM_NAME, A_META = "alpha-secret-building", "alpha-secret-room", "alpha-secret-meta"
A_MARKER_C = 37.125  # one of A's readings; also searched for as °F and K
MARKERS = (A_NAME, A_ROOM_NAME, A_META, "37.125", "98.825", "310.275", "alpha-secret-key")

HUGE_DIGITS = "9" * 5000
NUMBERS: list[Any] = [1e308, -1e308, 10**40, True, False, None, -0.0, 5e-324, [], {}, "NaN"]
NUMBER_TEXT = ["1e308", "-1e308", "NaN", "Infinity", "-0", "true", "", "0x10", HUGE_DIGITS[:400]]
LOOKALIKES = [
    f"{TENANT_A}#{BUILDING_A}",
    f"{BUILDING_A}#{ROOM_A}",
    f"@b#{TENANT_A}#{BUILDING_A}",
    f"{TENANT_A}:{BUILDING_A}",
    "../" + BUILDING_A,
    BUILDING_A.upper(),
    BUILDING_A + " ",
    "a" * 65,
    "a" * 1100,
    "é",
    "%00",
    "",
]


@dataclass
class Tally:
    tried: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)


@dataclass
class Targets:
    """What the attacker aims at: A's ids (which B may guess) and a cursor A was given."""

    key_ids: list[str]
    report_id: str
    import_id: str
    cursor: str
    idempotency_key: str


def belongs_to_a(item: dict[str, Any]) -> bool:
    """Whether a table item is tenant A's, by the key design (chalicelib/aws/keys.py)."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    index = item.get("gsi1pk", {}).get("S", "")
    doc = item.get("doc", {}).get("S", "")
    return (
        pk.startswith((f"{TENANT_A}#", f"@b#{TENANT_A}#", f"@idem#{TENANT_A}#"))
        or pk == f"@t#{TENANT_A}"
        or (pk == "@tenants" and sk == TENANT_A)
        or index.startswith((f"{TENANT_A}#", f"@t#{TENANT_A}#"))
        or (bool(doc) and json.loads(doc).get("tenant") == TENANT_A)
    )


def a_items(client: Any, table: str) -> frozenset[str]:
    """Every item of the table that belongs to tenant A, as canonical JSON."""
    items: list[str] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            if belongs_to_a(item):
                items.append(json.dumps(item, sort_keys=True, default=repr))
        if "LastEvaluatedKey" not in page:
            return frozenset(items)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def a_reports(reports: InMemoryReportRepository) -> str:
    return json.dumps(
        sorted(
            (r.model_dump_json() for r in reports._reports.values() if r.tenant == TENANT_A),
        )
    )


def seed_attack(api: Api) -> Targets:
    """A's markers and a cursor, B's namesake building; the stream folded into rollups."""
    at = now_ms()
    a = {"key": "admin-a"}
    api.ok(
        "PATCH", f"/buildings/{BUILDING_A}", body={"name": A_NAME, "metadata": {"m": A_META}}, **a
    )
    api.ok("PATCH", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}", body={"name": A_ROOM_NAME}, **a)
    marker = {"building": BUILDING_A, "room": ROOM_A, "sensor_id": SENSOR_A}
    marker |= {"temperature": A_MARKER_C, "timestamp": (at - 30_000) / 1000}
    idempotency_key = "a-device-retry-1"
    response = api.call(
        "POST",
        "/readings",
        key="ingest-a",
        body=marker,
        headers={"Idempotency-Key": idempotency_key},
    )
    assert response.status_code == 201
    api.ok("POST", "/keys", body={"scopes": ["read"], "name": "alpha-secret-key"}, **a)
    page = api.ok("GET", f"/buildings/{BUILDING_A}/rooms/{ROOM_A}/readings?limit=1", key="read-a")
    assert page["next_cursor"]
    # B's namesake: the same building and room ids, in B's namespace
    b = {"key": "attacker-b"}
    api.ok("POST", "/buildings", body={"building": BUILDING_A, "name": "b-namesake"}, **b)
    api.ok(
        "POST", "/readings", body={"building": BUILDING_A, "room": ROOM_A, "temperature": 19.5}, **b
    )
    drain_table(os.environ.get("ROOMTEMP_TABLE_NAME", ""))
    return Targets(
        key_ids=[v for k, v in api.world.key_ids.items() if k.endswith("-a")],
        report_id=api.world.report_id,
        import_id=api.world.import_id,
        cursor=page["next_cursor"],
        idempotency_key=idempotency_key,
    )


def ids(targets: Targets) -> st.SearchStrategy[str]:
    mine = [BUILDING_A, ROOM_A, SENSOR_A, TENANT_A, TENANT_B, "b-hq", "b1", targets.report_id]
    mine.append(targets.import_id)
    return st.sampled_from([*mine, *targets.key_ids, *LOOKALIKES])


def hostile(targets: Targets) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(NUMBERS), ids(targets), st.sampled_from(NUMBER_TEXT))


def query_values(targets: Targets) -> st.SearchStrategy[str]:
    forged = st.binary(min_size=1, max_size=80).map(lambda b: urllib.parse.quote(b.hex()))
    stolen = st.just(targets.cursor)
    tampered = st.just(targets.cursor[:-2] + ("AA" if not targets.cursor.endswith("AA") else "BB"))
    return st.one_of(
        st.sampled_from(NUMBER_TEXT), ids(targets), forged, stolen, tampered, st.just("2026-11-30")
    )


QUERY_NAMES = ["from", "to", "at", "minutes", "limit", "cursor", "unit", "metric", "interval"]
QUERY_NAMES += ["async", "force", "building", "band_low", "band_high"]


@st.composite
def attacks(
    draw: st.DrawFn, targets: Targets, path: str, method: str
) -> tuple[str, str, str, bytes, dict[str, str]]:
    """(method, path with query, label, body, headers) of one request by B to one route."""
    label = f"{method} {path}"
    url = path
    names = ("{building}", "{room}", "{sensor_id}", "{key_id}", "{tenant}", "{report_id}")
    for name in (*names, "{import_id}"):
        if name in url:
            url = url.replace(name, urllib.parse.quote(draw(ids(targets)), safe=""))
    url = url.replace("{name}", "dashboard.js")
    names = draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=3, unique=True))
    query = {n: draw(query_values(targets)) for n in names}
    if query:
        url += "?" + "&".join(f"{n}={urllib.parse.quote(v, safe='')}" for n, v in query.items())
    sample = SAMPLES[(path, method)][1]
    body: bytes = b""
    if method in ("POST", "PATCH", "PUT"):
        shape = draw(st.sampled_from(["mutated", "raw", "batch"]))
        if shape == "raw":
            body = draw(
                st.sampled_from(
                    [
                        b'{"building": "a-hq", "room": "r1", "temperature": '
                        + HUGE_DIGITS.encode()
                        + b"}",
                        b"[" * 5000 + b"]" * 5000,
                        b'{"readings": ' + b"[" * 3000 + b"]" * 3000 + b"}",
                        b"\xff\xfe not utf-8",
                        b"not json",
                        b"",
                    ]
                )
            )
        else:
            fields = dict(sample or {"building": BUILDING_A, "room": ROOM_A, "temperature": 20})
            for name in draw(
                st.lists(st.sampled_from([*fields, "timestamp", "humidity", "co2"]), max_size=3)
            ):
                fields[name] = draw(hostile(targets))
            payload: Any = (
                {"readings": [fields, dict(sample or fields)]} if shape == "batch" else fields
            )
            body = json.dumps(payload).encode()
    headers = {}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(
            st.sampled_from([targets.idempotency_key, "k" * 300, "a-device-retry-1 ", "-"])
        )
    return method, url, label, body, headers


@pytest.mark.e2e
def test_tenant_b_never_reads_or_writes_tenant_a_and_never_meets_a_5xx(
    dynamo_api: Api, moto_client: Any
) -> None:
    # Given A's data with markers, B's namesake building, and B's key with every tenant scope
    repos = wiring.repositories()
    _, token = access.issue_key(
        repos.keys,
        repos.registry,
        tenant=TENANT_B,
        scopes=[Scope.ADMIN, Scope.READ, Scope.INGEST],
        name="attacker",
        now_ms=now_ms(),
    )
    dynamo_api.world.tokens["attacker-b"] = token
    targets = seed_attack(dynamo_api)
    table = os.environ["ROOMTEMP_TABLE_NAME"]
    reports = wiring.report_repository()
    queue = wiring.reports_queue()
    assert isinstance(reports, InMemoryReportRepository) and isinstance(queue, InMemoryQueue)
    before, before_reports = a_items(moto_client, table), a_reports(reports)
    tally = Tally()

    # When B sends EXAMPLES generated requests, spread over every route
    def attack_once(attack: tuple[str, str, str, bytes, dict[str, str]]) -> None:
        method, url, label, body, headers = attack
        sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
        response = dynamo_api.client.http.request(method, url, headers=sent, body=body)
        tally.tried[label] += 1
        tally.statuses[response.status_code] += 1
        text = response.body.decode("utf-8", "replace")
        where = f"{method} {url[:200]} body={body[:200]!r} -> {response.status_code} {text[:300]}"
        if response.status_code >= 500:
            tally.server_errors.append(where)
        if any(marker in text for marker in MARKERS):
            tally.leaks.append(where)
        if a_items(moto_client, table) != before or a_reports(reports) != before_reports:
            tally.writes.append(where)

    per_route = settings(
        max_examples=max(1, EXAMPLES // len(ROUTES)),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for path, method in ROUTES:

        @per_route
        @given(attack=attacks(targets, path, method))
        def attack_route(attack: tuple[str, str, str, bytes, dict[str, str]]) -> None:
            attack_once(attack)

        attack_route()
    # And the reports B queued are computed
    for body in queue.take():
        report_id = json.loads(body)["id"]
        report = reports.get(report_id)
        if report is None or report.tenant != TENANT_B:
            continue  # A's own report, asked for by the world's seed
        report_service.run_report(reports, repos.rollups, repos.registry, report_id, clock=now_ms)
        if any(marker in json.dumps(reports.result(report_id)) for marker in MARKERS):
            tally.leaks.append(f"report {report_id}")

    # Then no answer was a 5xx, none carried A's data, and A's items never changed
    print(
        "\nattack: "
        + json.dumps(
            {
                "requests": sum(tally.tried.values()),
                "routes": len(tally.tried),
                "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
                "server_errors": len(tally.server_errors),
                "cross_tenant_reads": len(tally.leaks),
                "cross_tenant_writes": len(tally.writes),
            }
        )
    )
    assert not tally.server_errors, "\n".join(tally.server_errors[:5])
    assert not tally.leaks, "\n".join(tally.leaks[:5])
    assert not tally.writes, "\n".join(tally.writes[:5])
    assert len(tally.tried) == len(ROUTES), "a route was never tried"
