"""Structured request logs and EMF ingest metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import observability, wiring
from tests.fakes import in_memory_adapters


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    rejected: tuple[str, ...]


@pytest.fixture
def fresh_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    observability.reset_logger()
    yield
    observability.reset_logger()


@pytest.fixture(autouse=True)
def fresh_metrics_switch() -> Iterator[None]:
    # metrics_enabled() reads the environment once per process; these tests change it.
    observability.metrics_enabled.cache_clear()
    yield
    observability.metrics_enabled.cache_clear()


def emf_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in text.splitlines() if x.startswith('{"_aws"')]


def test_record_ingest_emits_counts_and_latency_per_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    observability.record_ingest("S3", Outcome(7, 2, ("bad",)), 0.25)

    [blob] = emf_lines(capsys.readouterr().out)
    assert blob["path"] == "S3"
    assert (blob["ReadingsAccepted"], blob["ReadingsDuplicate"], blob["ReadingsRejected"]) == (
        [7.0],
        [2.0],
        [1.0],
    )
    assert blob["IngestLatency"] == [250.0]
    [directive] = blob["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert ["path", "service"] in directive["Dimensions"]


def test_record_ingest_writes_no_metrics_outside_lambda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    observability.record_ingest("HTTP", Outcome(1, 0, ()), 0.01)

    assert emf_lines(capsys.readouterr().out) == []


def test_record_ingest_refuses_an_unknown_path() -> None:
    with pytest.raises(ValueError, match="path"):
        observability.record_ingest("FTP", Outcome(1, 0, ()), 0.01)  # type: ignore[arg-type]


def test_request_log_has_a_correlation_id_and_no_key(
    fresh_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the app on in-memory storage
    import app

    wiring.override(**in_memory_adapters())
    try:
        # The prod stage: log level INFO (dev logs at DEBUG)
        with Client(app.app, stage_name="prod") as client:
            # When a caller sends a key to a protected route and to /health
            client.http.get("/health", headers={"x-api-key": "rt_leak_me_not"})
            client.http.post(
                "/readings",
                headers={"Authorization": "Bearer rt_leak_me_not_either"},
                body=json.dumps({"temperature": 21}),
            )
    finally:
        wiring.reset()

    # Then the failed request is one JSON line with method, route, status and a correlation id
    # (successful ones are logged at DEBUG, below the default level)
    output = capsys.readouterr()
    text = output.out + output.err
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("message") == "request"]
    failed = [x for x in requests if x["status"] >= 400]
    assert [(x["method"], x["route"], x["status"]) for x in failed] == [("POST", "/readings", 401)]
    # (a successful request reaches INFO only when slow: the first may be, on a busy machine)
    assert all(
        x["duration_ms"] >= observability.SLOW_REQUEST_MS for x in requests if x not in failed
    )
    assert all(x["correlation_id"] for x in requests)
    # And neither key nor body appears anywhere
    assert "rt_leak_me_not" not in text
    assert "temperature" not in text


def test_local_logs_are_plain_lines(
    fresh_logger: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_DEV", "true")

    observability.logger().info("request", method="GET", status=200)

    line = (capsys.readouterr().out + "").strip().splitlines()[-1]
    assert " INFO request " in line
    assert "method=GET status=200" in line
    assert not line.startswith("{")


@dataclass
class FakeRequest:
    request_id: str
    method: str = "GET"
    path: str = "/health"

    @property
    def context(self) -> dict[str, str]:
        return {"requestId": self.request_id}


@dataclass(frozen=True)
class FakeResponse:
    status_code: int = 200


def test_concurrent_requests_keep_their_own_correlation_ids(
    fresh_logger: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")  # successful requests log at DEBUG
    # Given two requests served on parallel threads (chalice local, the container) that interleave
    both_inside = threading.Barrier(2, timeout=10)

    def get_response(request: FakeRequest) -> FakeResponse:
        both_inside.wait()  # each has set its id before either logs
        return FakeResponse()

    # When both complete
    threads = [
        threading.Thread(
            target=observability.observe_request, args=(FakeRequest(rid), get_response)
        )
        for rid in ("req-a", "req-b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each log line carries its own request's id
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert sorted(x["correlation_id"] for x in lines if x["message"] == "request") == [
        "req-a",
        "req-b",
    ]


def test_importing_the_app_leaves_powertools_for_first_use() -> None:
    # Cold start: Powertools costs nothing until the first log line or metric
    root = Path(__file__).resolve().parents[2]
    script = "import sys, app; print(sorted(m for m in sys.modules if 'powertools' in m))"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
