"""Shared fixtures: fake AWS credentials, no route to real AWS, fresh wiring, a moto table."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

# No per-example deadline: the machine is shared and noisy, and a test must not fail on timing.
settings.register_profile("roomtemp", deadline=None, max_examples=50)
settings.load_profile("roomtemp")

TEST_CURSOR_SECRET = "tests-" + uuid.uuid4().hex

# Set before anything creates a boto3 client: fake credentials, one region, no profile, and no
# endpoint inherited from the shell (each suite chooses moto in-process or a loopback emulator).
for _name in list(os.environ):
    if _name.startswith("AWS_ENDPOINT_URL") or _name in {"AWS_PROFILE", "AWS_SESSION_TOKEN"}:
        del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # moto in-process is not thread-safe: one batch request and one rollup refresh at a time
        # (the concurrent paths run against moto's server in the e2e and reliability suites).
        "ROOMTEMP_WRITE_CONCURRENCY": "1",
        # Page cursors are signed with the deployment's secret; the tests' is this one.
        "ROOMTEMP_CURSOR_SECRET": TEST_CURSOR_SECRET,
        "ROOMTEMP_ROLLUP_THREADS": "1",
        "ROOMTEMP_BUCKET_READ_CONCURRENCY": "1",
    }
)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_loopback(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_loopback(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_loopback(address)
    return _real_connect_ex(self, address)


# moto stands in for DynamoDB in every test: teach it what DynamoDB does that it does not
# (infra/dynamodb_rules.py), as the embedded emulator does.
from infra.dynamodb_rules import apply as _dynamodb_rules  # noqa: E402

_dynamodb_rules()

# A test that forgot moto must fail loudly instead of reaching real AWS.
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def fresh_wiring() -> Iterator[None]:
    """Every test starts and ends with no cached client, repository or setting."""
    from chalicelib import wiring

    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture
def table_name() -> str:
    """A table name no other test uses."""
    return f"roomtemp-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def moto_dynamodb() -> Iterator[Any]:
    """One in-process moto per worker (starting it per test costs more than the tests)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamodb(moto_dynamodb: Any, table_name: str) -> Iterator[Any]:
    """A moto DynamoDB client with a fresh table (`table_name`) created from infra/table.json."""
    from infra.tables import create_table

    create_table(moto_dynamodb, table_name)
    yield moto_dynamodb
    with contextlib.suppress(moto_dynamodb.exceptions.ResourceNotFoundException):
        moto_dynamodb.delete_table(TableName=table_name)
