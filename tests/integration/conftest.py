"""The contract suite's repositories: the in-memory fake and the DynamoDB adapter on moto."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.readings import DynamoReadingRepository
from chalicelib.ports import ReadingRepository
from tests.factories import dynamo_readings
from tests.fakes import InMemoryReadingRepository


class ClientProxy:
    """A DynamoDB client that records calls and lets a test rewrite some answers."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method) or name.startswith("_") or name in {"exceptions", "meta"}:
            return method

        def call(**kwargs: Any) -> Any:
            self.calls.setdefault(name, []).append(kwargs)
            return method(**kwargs)

        return call


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff sleeps the DynamoDB adapter asked for (recorded, never slept)."""
    return []


@pytest.fixture
def dynamo_repo(dynamodb: Any, table_name: str, sleeps: list[float]) -> DynamoReadingRepository:
    return dynamo_readings(dynamodb, table_name, sleep=sleeps.append)


@pytest.fixture(params=["memory", "dynamo"])
def repo(request: pytest.FixtureRequest) -> ReadingRepository:
    """Each contract test runs once against every adapter."""
    if request.param == "memory":
        return InMemoryReadingRepository()
    repository: ReadingRepository = request.getfixturevalue("dynamo_repo")
    return repository
