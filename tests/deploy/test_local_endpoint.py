"""`make run` finds a running endpoint (AWS_ENDPOINT_URL, LocalStack via localstack-client, or
anything on the emulator port) before it starts its own emulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from infra.local import LOCALHOST, free_port, running_endpoint


@pytest.fixture
def listener() -> Iterator[int]:
    """Something listening on a free loopback port."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_an_explicit_endpoint_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert running_endpoint(free_port()) == "http://127.0.0.1:9"


def test_localstack_is_found_where_localstack_host_says(
    monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOCALSTACK_HOST", f"localhost:{listener}")
    assert running_endpoint(free_port()) == f"http://127.0.0.1:{listener}"


def test_something_on_the_emulator_port_is_used(
    monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOCALSTACK_HOST", f"localhost:{free_port()}")
    assert running_endpoint(listener) == f"http://127.0.0.1:{listener}"


def test_nothing_running_means_the_embedded_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOCALSTACK_HOST", f"localhost:{free_port()}")
    assert running_endpoint(free_port()) is None
