"""`make run` as a newcomer gets it: every handler the deployed service runs works locally, and
stopping it (Ctrl-C, or SIGTERM to `make`) stops everything it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.local import FAKE_CREDENTIALS, api_call, free_port, port_open
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AT_S = int(time.time()) - 3600  # an hour ago: inside any recent window


@dataclass
class Stack:
    api: str
    endpoint: str
    admin_key: str
    process: subprocess.Popen[str]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return api_call(self.api, self.admin_key, method, path, body)

    def sqs(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        ).client("sqs", endpoint_url=self.endpoint)


def local_env() -> dict[str, str]:
    """This environment without anything pointing at another endpoint (LocalStack, AWS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("LOCALSTACK_HOST", None)
    return {**env, **FAKE_CREDENTIALS}


def start(
    command: list[str], output: list[str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `command` (make run or its python command) in its own process group; its printed
    settings once it says it is up. Its later output goes to `output`."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=local_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    printed: dict[str, str] = {}
    lines = []
    for line in process.stdout:
        lines.append(line)
        if match := re.match(r"\s+(admin key|roomtemp API|emulator)\s+(\S+)", line):
            printed[match.group(1)] = match.group(2)
        if "stops everything" in line:
            # its later output is read (a full pipe would block it) and kept for failures
            later = output if output is not None else []
            threading.Thread(target=later.extend, args=(process.stdout,), daemon=True).start()
            return process, printed
    raise AssertionError("make run stopped before it was up:\n" + "".join(lines[-40:]))


def stop_group(process: subprocess.Popen[str]) -> None:
    """Last resort after a test: nothing it started may outlive it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    api_port, emulator_port = free_port(), free_port()
    command = [sys.executable, "-m", "infra.local", "run"]
    command += ["--api-port", str(api_port), "--emulator-port", str(emulator_port)]
    process, printed = start([*command, "--schedule-every", "2"])
    try:
        yield Stack(printed["roomtemp API"], printed["emulator"], printed["admin key"], process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            stop_group(process)
    assert not port_open(api_port) and not port_open(emulator_port)


def post_readings(stack: Stack, building: str, values: list[float]) -> None:
    readings = [
        {"building": building, "room": "r1", "timestamp": AT_S + 60 * i, "temperature": value}
        for i, value in enumerate(values)
    ]
    status, body = stack.call("POST", "/readings", {"readings": readings})
    assert status in (200, 201), body


def folded(stack: Stack, building: str, count: int) -> Any:
    """The room's stats once the stream consumer has folded `count` readings into its rollups."""

    def stats() -> Any:
        status, body = stack.call("GET", f"/buildings/{building}/rooms/r1/stats")
        return body if status == 200 and body["count"] == count else None

    return eventually(stats, "the room's rollups", 60)


def test_a_report_is_computed_by_the_local_reports_worker(stack: Stack) -> None:
    # Given a building with an hour of readings, folded into its rollups
    building = f"b-{uuid.uuid4().hex[:8]}"
    post_readings(stack, building, [20.0, 22.0, 24.0])
    folded(stack, building, 3)
    # When a report is asked for
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(AT_S - 60))
    to = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(AT_S + 3600))
    status, accepted = stack.call(
        "POST", "/reports", {"building": building, "from": since, "to": to}
    )
    assert status == 202, accepted

    # Then the reports worker completes it
    def completed() -> Any:
        _, report = stack.call("GET", f"/reports/{accepted['id']}")
        return report if report["status"] in ("completed", "failed") else None

    report = eventually(completed, "the report")
    assert report["status"] == "completed", report
    assert report["summary"]["rooms"] == 1
    temperature = report["summary"]["building_stats"]["temperature"]
    assert (temperature["min"], temperature["max"]) == (20.0, 24.0)


def test_readings_reach_the_rollups_through_the_stream_consumer(stack: Stack) -> None:
    building = f"b-{uuid.uuid4().hex[:8]}"
    post_readings(stack, building, [18.0, 19.0])

    body = folded(stack, building, 2)
    assert (body["min"], body["max"]) == (18.0, 19.0)


def test_a_poison_message_ends_in_the_dead_letter_queue(stack: Stack) -> None:
    # Given a message the ingest handler can never handle
    sqs = stack.sqs()
    queue = sqs.get_queue_url(QueueName="roomtemp-ingest")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="roomtemp-ingest-dlq")["QueueUrl"]
    marker = f"not json {uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=queue, MessageBody=marker)

    # Then after its receives it is moved to the dead-letter queue, and nothing else is lost
    def dead_lettered() -> bool:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return any(m["Body"] == marker for m in got.get("Messages", []))

    eventually(dead_lettered, "the poison message in roomtemp-ingest-dlq")
    assert stack.call("GET", "/health")[0] == 200


def test_health_reports_every_resource(stack: Stack) -> None:
    status, body = stack.call("GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert {"table", "bucket", "ingest_queue", "reports_queue"} <= set(body["checks"])
    assert all(check == "ok" for check in body["checks"].values()), body


@pytest.mark.parametrize("how", ["SIGTERM to make", "Ctrl-C"])
def test_stopping_make_run_stops_everything_it_started(how: str) -> None:
    # Given `make run` on free ports
    api_port, emulator_port = free_port(), free_port()
    make = ["make", "--no-print-directory", "run"]
    output: list[str] = []
    process, _ = start([*make, f"API_PORT={api_port}", f"EMULATOR_PORT={emulator_port}"], output)
    try:
        assert port_open(api_port) and port_open(emulator_port)
        # When it is stopped the way a user stops it
        if how == "Ctrl-C":
            os.killpg(process.pid, signal.SIGINT)  # the terminal signals the foreground group
        else:
            process.send_signal(signal.SIGTERM)  # to make alone (make passes it to its child)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError("still running 90 s later:\n" + "".join(output[-30:])) from None
        # Then it says it stopped, and neither the API nor the emulator is left listening
        try:
            eventually(lambda: "  stopped" in "".join(output), "its last word, 'stopped'", 60)
        except AssertionError as error:
            raise AssertionError(f"{error}; it said:\n" + "".join(output[-30:])) from None
        eventually(
            lambda: not port_open(api_port) and not port_open(emulator_port),
            f"ports {api_port} and {emulator_port} closed",
            30,
        )
    finally:
        stop_group(process)
