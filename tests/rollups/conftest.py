"""Fixtures of the rollup, statistics and report tests: moto AWS, both repository adapters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.aws.streams import table_changes
from chalicelib.domain.models import TableChange
from chalicelib.domain.registry import Building, Room
from infra.streams import StreamReader, streams_client
from infra.tables import create_table
from tests.fakes import InMemoryReadingRepository

QUEUE = "roomtemp-reports"
BUCKET = "roomtemp-data"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto in-process: the table (from infra/), the bucket and the reports queue; env wired."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    table = f"roomtemp-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        wiring.reset()
        dynamodb = wiring.aws_client("dynamodb")
        create_table(dynamodb, table)
        s3 = wiring.aws_client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = wiring.aws_client("sqs")
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        monkeypatch.setenv("ROOMTEMP_TABLE_NAME", table)
        monkeypatch.setenv("ROOMTEMP_BUCKET_NAME", BUCKET)
        monkeypatch.setenv("ROOMTEMP_REPORTS_QUEUE_URL", queue_url)
        monkeypatch.setenv("ROOMTEMP_ROLLUP_THREADS", "1")  # moto in-process is not thread-safe
        wiring.reset()
        yield {"dynamodb": dynamodb, "s3": s3, "sqs": sqs, "table": table, "queue_url": queue_url}
        wiring.reset()


@pytest.fixture(params=["memory", "dynamo"])
def repo(request: pytest.FixtureRequest) -> Any:
    """The contract suite's subject: the in-memory fake and the DynamoDB adapter (moto)."""
    if request.param == "memory":
        return InMemoryReadingRepository()
    request.getfixturevalue("aws")
    from chalicelib.aws.registry import DynamoRegistryRepository
    from tests.factories import dynamo_readings, dynamo_table

    settings = wiring.get_settings()
    client = wiring.aws_client("dynamodb")
    return Registering(
        dynamo_readings(client, settings.table_name, sleep=lambda _: None),
        DynamoRegistryRepository(dynamo_table(client, settings.table_name)),
        client,
        settings.table_name,
    )


class Registering:
    """The DynamoDB adapter, with each written room registered first, as the services do.

    (In the table a building's rooms are its registry items; the in-memory fake lists the rooms
    that hold readings, which the services make the same set.)
    """

    def __init__(self, repo: Any, registry: Any, client: Any, table: str) -> None:
        self._repo, self._registry = repo, registry
        self._stream = StreamReader(client, streams_client(), table)

    def take_changes(self) -> list[TableChange]:
        """The table's stream records since the last call (moto's stream, in-process)."""
        return table_changes(self._stream.read(10_000))

    def put_readings(self, readings: Any, **options: Any) -> Any:
        for tenant, building, room in sorted({(r.tenant, r.building, r.room) for r in readings}):
            self._registry.create_building(
                Building(building=building, tenant=tenant, name=building, metadata={}, created_ms=0)
            )
            self._registry.create_room(
                Room(
                    tenant=tenant,
                    building=building,
                    room=room,
                    name=room,
                    metadata={},
                    created_ms=0,
                )
            )
        return self._repo.put_readings(readings, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)
