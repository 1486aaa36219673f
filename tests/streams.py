"""Folding what was written into the rollups, as the table's stream consumer does in AWS.

- `consume(repository)`: the in-memory fake's stream, through the consumer's use case.
- `drain_table(table)`: the table's stream (moto in-process, or the endpoint AWS_ENDPOINT_URL
  names), through the app's own "rollups" handler, with Lambda-shaped events.
"""

from __future__ import annotations

from typing import Any

from chalicelib.services import rollups
from infra.streams import Drained, StreamReader, drain, streams_client

_readers: dict[tuple[str, str], StreamReader] = {}


def consume(repository: Any) -> rollups.FoldOutcome:
    """Fold the fake's new readings into its rollups; what the fold did."""
    return rollups.fold(repository, repository.take_changes())


def drain_table(table: str) -> Drained:
    """Hand every record of `table`'s stream so far to the app's handler (what was handed).

    The stream is read with clients of its own (Lambda's event source is not the app: faults
    injected into the app's clients do not touch it); a reader per stream remembers where it
    stopped."""
    import boto3

    from app import app

    dynamodb = boto3.client("dynamodb")
    arn = str(dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"])
    reader = _readers.get((table, arn))
    if reader is None:
        reader = _readers[(table, arn)] = StreamReader(dynamodb, streams_client(), table, arn)
    return drain(reader, app.handler_map["rollups"])
