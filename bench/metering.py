"""DynamoDB's bill, counted call by call: API calls, write and read units, items read.

moto meters no capacity, so a `Meter` hooks a boto3 client's events and charges each request by
DynamoDB's rules (Developer Guide, "Item sizes and formats" and "Read/write capacity mode"):

- item size: every attribute's name length plus its value's size (strings and binaries: their
  bytes; numbers: 1 byte + 1 per 2 significant digits; maps and lists: 3 bytes + 1 per element
  + the elements; booleans and nulls: 1 byte);
- a write (PutItem, a BatchWriteItem put, a PartiQL INSERT) costs ceil(size / 1 KB) write units,
  whether or not its condition holds; a delete 1 (the deleted items here are under 1 KB);
- a read: GetItem and each BatchGetItem item ceil(size / 4 KB) read units; a Query the sum of the
  sizes it read, rounded up to 4 KB once; eventually consistent reads cost half. The sizes are
  those of the returned items: a projected Query is charged by its items' whole size in AWS, so
  projected reads are undercounted here (none of the metered write paths projects).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

KB = 1024
_INSERT_NAMES = re.compile(r"'([^']+)'\s*:\s*\?")


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (without its name)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").lower().split("e")[0].strip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(v)
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: x}) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    return 1  # BOOL, NULL


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item (attribute names + values)."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    """Write units DynamoDB charges to put `item` (1 per started KB)."""
    return max(1, math.ceil(item_size(item) / KB))


def inserted_item(statement: dict[str, Any]) -> dict[str, Any] | None:
    """The item a parameterized PartiQL `INSERT ... VALUE {'a': ?, ...}` writes (else None)."""
    text = statement.get("Statement", "")
    if not text.lstrip().upper().startswith("INSERT"):
        return None
    names = _INSERT_NAMES.findall(text)
    return dict(zip(names, statement.get("Parameters") or [], strict=True))


class Meter:
    """Counts calls, write units, read units and items read of one boto3 DynamoDB client."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.items_read = 0
        self.writes = 0  # items written (or attempted)
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._request)
        events.register("after-call.dynamodb", self._response)

    def _request(self, params: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        context["metered_params"] = params
        items: list[dict[str, Any]] = []
        if model.name == "PutItem":
            items.append(params["Item"])
        elif model.name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        items.append(request["PutRequest"]["Item"])
                    else:
                        self.wru += 1
                        self.writes += 1
        elif model.name == "BatchExecuteStatement":
            items += [i for s in params["Statements"] if (i := inserted_item(s)) is not None]
        elif model.name == "ExecuteStatement":
            if (item := inserted_item(params)) is not None:
                items.append(item)
        elif model.name in ("UpdateItem", "DeleteItem"):
            self.wru += 1
            self.writes += 1
        self.writes += len(items)
        self.wru += sum(write_units(i) for i in items)

    def _response(self, parsed: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        params = context.get("metered_params") or {}
        consistent = bool(params.get("ConsistentRead"))
        factor = 1.0 if consistent else 0.5
        if model.name == "Query":
            self.items_read += int(parsed.get("ScannedCount", 0))
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self.rru += factor * max(1, math.ceil(size / (4 * KB)))
        elif model.name == "GetItem":
            item = parsed.get("Item")
            self.items_read += int(item is not None)
            self.rru += factor * max(1, math.ceil(item_size(item or {}) / (4 * KB)))
        elif model.name == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                batch_consistent = (
                    params.get("RequestItems", {}).get(table, {}).get("ConsistentRead")
                )
                each = 1.0 if batch_consistent else 0.5
                self.items_read += len(items)
                self.rru += sum(each * max(1, math.ceil(item_size(i) / (4 * KB))) for i in items)

    def snapshot(self) -> dict[str, float]:
        """The totals so far: calls, wru, rru, items_read, writes."""
        return {
            "calls": float(sum(self.calls.values())),
            "wru": self.wru,
            "rru": self.rru,
            "items_read": float(self.items_read),
            "writes": float(self.writes),
        }

    def since(self) -> Callable[[], dict[str, float]]:
        """A function giving what was counted since now (same keys as snapshot)."""
        before = self.snapshot()
        return lambda: {k: v - before[k] for k, v in self.snapshot().items()}

    @contextmanager
    def reads(self, into: dict[str, float], key: str) -> Iterator[None]:
        """Store in into[key] the items read within the block."""
        before = self.items_read
        yield
        into[key] = float(self.items_read - before)
