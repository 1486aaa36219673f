"""Small builders of domain readings shared by the suites."""

from __future__ import annotations

from typing import Any

from chalicelib.aws.dynamo import DynamoTable
from chalicelib.aws.readings import DynamoReadingRepository
from chalicelib.aws.registry import DynamoKeyRepository, DynamoRegistryRepository
from chalicelib.aws.retry import Retrier
from chalicelib.domain.models import Reading
from chalicelib.ports import Repositories

# 2026-11-25T10:00:00Z: a fixed instant, so tests never depend on the clock.
T0 = 1_795_600_800_000
MINUTE = 60_000


def reading(
    ts_ms: int = T0,
    *,
    tenant: str = "t1",
    building: str = "hq",
    room: str = "r101",
    sensor_id: str = "s1",
    temperature: float | None = 21.0,
    humidity: float | None = None,
    co2: float | None = None,
) -> Reading:
    """A valid domain reading (temperature in °C)."""
    return Reading(
        building=building,
        room=room,
        sensor_id=sensor_id,
        ts_ms=ts_ms,
        temperature=temperature,
        humidity=humidity,
        co2=co2,
        tenant=tenant,
    )


def dynamo_table(client: Any, name: str, *, sleep: Any = None, concurrency: int = 1) -> DynamoTable:
    """The table adapter over `client` (a moto client, maybe faulted); backoffs go to `sleep`."""
    retrier = Retrier("the table", sleep=sleep) if sleep is not None else None
    return DynamoTable(client, name, retrier=retrier, concurrency=concurrency)


def dynamo_readings(
    client: Any, name: str, *, sleep: Any = None, rollup_threads: int = 1, concurrency: int = 1
) -> DynamoReadingRepository:
    """The DynamoDB reading repository over `client` and table `name`."""
    table = dynamo_table(client, name, sleep=sleep, concurrency=concurrency)
    return DynamoReadingRepository(table, rollup_threads=rollup_threads)


def dynamo_repositories(client: Any, name: str, *, sleep: Any = None) -> Repositories:
    """Every DynamoDB repository over `client` and table `name`."""
    table = dynamo_table(client, name, sleep=sleep)
    readings = DynamoReadingRepository(table, rollup_threads=1)
    return Repositories(
        readings=readings,
        registry=DynamoRegistryRepository(table),
        keys=DynamoKeyRepository(table),
        rollups=readings,
    )


def dump(answer: Any) -> Any:
    """An API answer model as the JSON the API sends (tests compare those values)."""
    return answer.model_dump(mode="json", by_alias=True)
