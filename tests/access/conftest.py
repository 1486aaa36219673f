"""Fixtures of the access tests: the seeded world (access_world.py) in memory or over moto."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from access_world import TABLE, Api, _app, seed_world
from chalice.test import Client

from chalicelib import wiring
from infra.local import FAKE_CREDENTIALS
from tests.fakes import (
    InMemoryAlertRepository,
    InMemoryObjectStore,
    InMemoryQueue,
    InMemoryReportRepository,
    in_memory_repositories,
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake AWS credentials, no endpoint (moto intercepts), no key cache; wiring rebuilt."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.setenv("ROOMTEMP_TABLE_NAME", TABLE)
    monkeypatch.setenv("ROOMTEMP_AUTH_CACHE_SECONDS", "0")
    wiring.reset()
    # Reports and import tickets are kept in memory here (the matrix checks access, not S3).
    wiring.override(
        report_repository=InMemoryReportRepository(),
        reports_queue=InMemoryQueue(),
        ingest_queue=InMemoryQueue(),
        object_store=InMemoryObjectStore(),
    )
    yield
    wiring.reset()


@pytest.fixture
def memory_backend(aws_env: None) -> Iterator[str]:
    """In-memory repositories behind every handler."""
    wiring.override(
        repositories=in_memory_repositories(), alert_repository=InMemoryAlertRepository()
    )
    yield "memory"


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """moto's in-process DynamoDB for one test module, and one client for it (clients are slow
    to build; module scope keeps the mock from leaking into other modules' servers)."""
    import boto3
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
        with mock_aws():
            yield boto3.session.Session().client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamo_backend(
    aws_env: None, moto_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The DynamoDB adapters over moto, on a fresh table made from infra/'s definition."""
    from infra.tables import create_table

    table = create_table(moto_client, f"access-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("ROOMTEMP_TABLE_NAME", table)
    wiring.reset()
    wiring.override(
        report_repository=InMemoryReportRepository(),
        reports_queue=InMemoryQueue(),
        ingest_queue=InMemoryQueue(),
        object_store=InMemoryObjectStore(),
    )
    shared = functools.cache(lambda service: moto_client)
    monkeypatch.setattr(wiring, "aws_client", shared)
    # Cache the settings now: chalice.test.Client swaps in the 'dev' stage's environment per call.
    wiring.repositories()
    yield "dynamo"
    moto_client.delete_table(TableName=table)


@pytest.fixture(params=["memory", "dynamo"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both storage backends: the behaviour tests run against each."""
    return str(request.getfixturevalue(f"{request.param}_backend"))


@pytest.fixture
def api(backend: str) -> Iterator[Api]:
    """A client over the seeded world, on both backends."""
    world = seed_world()
    with Client(_app()) as client:
        yield Api(client, world)


@pytest.fixture
def memory_api(memory_backend: str) -> Iterator[Api]:
    """A client over the seeded world, in memory only (the big matrix)."""
    world = seed_world()
    with Client(_app()) as client:
        yield Api(client, world)


@pytest.fixture
def dynamo_api(dynamo_backend: str) -> Iterator[Api]:
    """A client over the seeded world, over moto only."""
    world = seed_world()
    with Client(_app()) as client:
        yield Api(client, world)


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """Put os.environ back as it was (for fixtures that point it at an emulator)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    wiring.reset()
