"""Creates the table from infra/table.json: used by tests, `make run` and the deploy template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE_DEFINITION = Path(__file__).with_name("table.json")


def table_definition(table_name: str | None = None) -> dict[str, Any]:
    """The CreateTable arguments of the one table (optionally under another name)."""
    definition: dict[str, Any] = json.loads(TABLE_DEFINITION.read_text())
    if table_name:
        definition["TableName"] = table_name
    return definition


def create_table(client: Any, table_name: str | None = None) -> str:
    """Create the table if missing (idempotent) and turn on its TTL; return its name."""
    definition = table_definition(table_name)
    ttl_attribute = definition.pop("TimeToLiveAttribute", None)
    name: str = definition["TableName"]
    try:
        client.create_table(**definition)
    except client.exceptions.ResourceInUseException:
        return name
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    if ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
    return name
