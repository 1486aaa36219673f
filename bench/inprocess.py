"""moto in-process, as the embedded emulator has it, for benchmarks that count calls and units.

The emulator's patches (infra/emulator.py: Queries read their key range only; DynamoDB's INSERT
rules, infra/dynamodb_rules.py) and one of the benchmarks' own (`fast_attribute_values`), so that
simulating hours of traffic takes minutes. Counting never depends on them; timings do.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.metering import Meter


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return value


def fast_attribute_values() -> Callable[[], None]:
    """Make moto answer DynamoDB attribute values as they are (already in DynamoDB's JSON form)
    instead of walking each through its generic shape serializer; return the undo.

    moto 5.2 spends ~0.2 ms per attribute value on that walk: ~5 ms per rollup item, so a
    refresh that reads an hour's 60 minute rollups spent 0.3 s in it. The answers are the same
    (checked: Query, GetItem, BatchGetItem, ExecuteStatement, GetRecords, binaries included).
    """
    from moto.core.serialize import JSONSerializer

    original = JSONSerializer._serialize_type_structure

    def serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict):
            serialized[key] = _wire(value)
            return
        original(self, serialized, value, shape, key)

    JSONSerializer._serialize_type_structure = serialize  # type: ignore[method-assign]

    def undo() -> None:
        JSONSerializer._serialize_type_structure = original  # type: ignore[method-assign]

    return undo


@contextmanager
def patched_moto() -> Iterator[None]:
    """moto with the emulator's patches and fast_attribute_values, undone after."""
    from infra.dynamodb_rules import apply
    from infra.emulator import patch_moto

    undo_rules, undo_speed, undo_values = apply(), patch_moto(), fast_attribute_values()
    try:
        yield
    finally:
        undo_values()
        undo_speed()
        undo_rules()


@contextmanager
def moto_table(**settings: str) -> Iterator[tuple[Any, str]]:
    """A boto3 DynamoDB client on patched in-process moto and a fresh table from
    infra/table.json; fake credentials, no endpoint and `settings` (ROOMTEMP_*) in the
    environment meanwhile."""
    import boto3
    from moto import mock_aws

    from infra.tables import create_table

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            del os.environ[name]
    table = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        **{f"ROOMTEMP_{k.upper()}": v for k, v in settings.items()},
    )
    try:
        with patched_moto(), mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            yield client, create_table(client, table)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def moto_app() -> Iterator[dict[str, Any]]:
    """The app's wiring (chalicelib.wiring) on a fresh table in patched in-process moto.

    Yields {"table", "client" (the app's own DynamoDB client), "meter" (on that client)}. One
    write and one rollup refresh at a time: moto in-process is not thread-safe.
    """
    from chalicelib import wiring
    from chalicelib.settings import get_settings

    with moto_table(write_concurrency="1", rollup_threads="1") as (_, table):
        os.environ["ROOMTEMP_TABLE_NAME"] = table
        wiring.reset()
        try:
            client = wiring.aws_client("dynamodb")
            # Read now: chalice.test.Client overlays its stage's environment on each request.
            assert get_settings().table_name == table
            yield {"table": table, "client": client, "meter": Meter(client)}
        finally:
            wiring.reset()
