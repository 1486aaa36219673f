"""DynamoDB stream records (as Lambda passes them) to table changes: a reading's NEW_IMAGE is
the reading; every other record (rollups, registry items, removals) carries none."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.aws import keys
from chalicelib.aws.items import item_reading
from chalicelib.domain.models import Reading, TableChange


def table_changes(records: Iterable[dict[str, Any]]) -> list[TableChange]:
    """The changes of a stream batch, in stream order."""
    return [
        TableChange(
            sequence=str(record["dynamodb"]["SequenceNumber"]),
            written_ms=int(float(record["dynamodb"].get("ApproximateCreationDateTime", 0)) * 1000),
            reading=_reading(record),
        )
        for record in records
    ]


def _reading(record: dict[str, Any]) -> Reading | None:
    if record.get("eventName") != "INSERT":
        return None  # readings are only ever inserted (conditional writes; TTL removes them)
    image = record["dynamodb"].get("NewImage") or {}
    pk, sk = image.get("pk", {}).get("S"), image.get("sk", {}).get("S")
    if not pk or not sk or not keys.is_reading_key(pk, sk):
        return None
    return item_reading(image)
