"""The embedded emulator: moto's server, with two fixes: a Query reads only its own key range,
and items no longer in the table are freed.

moto 5.2's `Table.query` starts from `Table.all_items()`, which collects and sorts every item of
the table on each call (~40 µs per item of the table, measured): in a table of a million items a
Query of one room's 15 minutes takes most of a minute, where DynamoDB reads the partition only.
Then it sorts the partition and tests the sort-key condition item by item in Python: a Query of
one minute of a room holding 20,000 items took 0.27 s (19 ms with this patch, measured
in-process), where DynamoDB reads only the items of its key range.
While a Query of the base table runs, `all_items()` answers with the queried partition's items
inside the sort-key condition's range (string keys: a sorted list of the partition's keys, kept
up to date by put_item and delete_item, bisected), plus the nearest item on either side so that
moto's Limit and page-size checks see the same next item as before (with a Limit, only as many
items as it allows and the next); everything else (key conditions, filters, order, paging, the
response) stays moto's own. Index queries and scans are untouched. tests/deploy/test_emulator.py
checks that every answer is what unpatched moto gives.

moto also keeps every DynamoDB `Item` object it ever creates in a class-level list (its
`BaseModel` tracks instances for its dashboard): each item written, each overwritten version and
each copy a Query or GetItem answered with stays in memory for the life of the process. An
8,000-reading file and queue ingest ended with 106,685 live items for 7,455 stored readings, and
a 40,000-reading one grew ~1.5 MB/s without end.
The patch stops that tracking for `Item`; nothing in the emulator reads that list.

    python -m infra.emulator -H 127.0.0.1 -p 4566    # the same arguments as `python -m moto.server`
"""

from __future__ import annotations

import bisect
import inspect
import sys
import threading
from collections.abc import Callable
from operator import itemgetter
from typing import Any

_partition = threading.local()
_lock = threading.Lock()
# Bumped by each patch: sorted keys built under an earlier patch may have missed writes made
# while moto was unpatched, so they are rebuilt.
_generation = [0]


def patch_moto() -> Callable[[], None]:
    """Make base-table Queries read their key range only, and stop moto keeping every Item it
    ever made; return a function that undoes both."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "partition_only", False):
        return lambda: None  # patched already (by whoever will undo it)
    _generation[0] += 1
    original_all_items = Table.all_items
    original_query = Table.query
    original_put_item = Table.put_item
    original_delete_item = Table.delete_item
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> Any:
        hash_key = getattr(_partition, "key", None)
        if hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key, {})
            found = _key_range(self, hash_key, partition, _partition.condition)
            return list(partition.values()) if found is None else found
        return original_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None:
            return original_query(self, *args, **kwargs)
        _partition.key = bound["hash_key"]
        # Legacy QueryFilter counts every partition item as scanned: read the whole partition.
        if bound.get("filter_kwargs"):
            _partition.condition = None
        else:
            paged = bool(bound.get("exclusive_start_key"))
            _partition.condition = _Condition(
                bound.get("range_comparison"),
                [getattr(o, "value", None) for o in bound.get("range_objs") or []],
                all(getattr(o, "type", None) == "S" for o in bound.get("range_objs") or []),
                None if paged else bound.get("limit"),
                bound.get("scan_index_forward") is not False,
            )
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _partition.key = _partition.condition = None

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put_item(self, *args, **kwargs)
        with _lock:
            index = _indexes(self).get(item.hash_key)
            if index is not None:
                index.add(item.range_key)
        return item

    def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_delete_item(self, *args, **kwargs)
        if item is not None:
            with _lock:
                index = _indexes(self).get(item.hash_key)
                if index is not None:
                    index.remove(item.range_key)
        return item

    query.partition_only = True  # type: ignore[attr-defined]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    # BaseModel.__new__ appends each new instance to the class's instances_tracked list.
    Item.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]

    def undo() -> None:
        del Item.__new__
        Table.all_items = original_all_items  # type: ignore[method-assign]
        Table.query = original_query  # type: ignore[method-assign]
        Table.put_item = original_put_item  # type: ignore[method-assign]
        Table.delete_item = original_delete_item  # type: ignore[method-assign]

    return undo


def _untracked_new(cls: type, *_: Any, **__: Any) -> Any:
    return object.__new__(cls)


class _Condition:
    """What a Query asks of the sort key, and how many items it may return."""

    def __init__(
        self,
        comparison: str | None,
        values: list[Any],
        strings: bool,
        limit: int | None,
        forward: bool,
    ) -> None:
        self.comparison, self.values, self.strings = comparison, values, strings
        self.limit, self.forward = limit, forward


class _SortedKeys:
    """A partition's string sort keys in order (and moto's key objects alongside), kept up to
    date by put_item and delete_item; rebuilt when its size disagrees with the partition's."""

    def __init__(self, partition: dict[Any, Any]) -> None:
        self.generation = _generation[0]
        pairs = sorted(((k.value, k) for k in partition), key=itemgetter(0))
        self.values: list[str] = [v for v, _ in pairs]
        self.keys: list[Any] = [k for _, k in pairs]

    @staticmethod
    def usable(partition: dict[Any, Any]) -> bool:
        return all(getattr(k, "type", None) == "S" for k in partition)

    def add(self, key: Any) -> None:
        if getattr(key, "type", None) != "S":
            self.values.append("")  # the sizes now disagree: rebuilt (and refused) on next use
            return
        at = bisect.bisect_left(self.values, key.value)
        if at == len(self.values) or self.values[at] != key.value:
            self.values.insert(at, key.value)
            self.keys.insert(at, key)

    def remove(self, key: Any) -> None:
        value = getattr(key, "value", None)
        at = bisect.bisect_left(self.values, value) if isinstance(value, str) else len(self.values)
        if at < len(self.values) and self.values[at] == value:
            del self.values[at]
            del self.keys[at]


def _indexes(table: Any) -> dict[Any, _SortedKeys]:
    indexes: dict[Any, _SortedKeys] = table.__dict__.setdefault("_roomtemp_sorted_keys", {})
    return indexes


def _key_range(
    table: Any, hash_key: Any, partition: dict[Any, Any], condition: _Condition | None
) -> list[Any] | None:
    """The partition's items whose string sort key can meet the condition, in order, with one
    neighbour on each side (with a Limit: the first `limit` of them in the Query's direction and
    the next); None when the condition or the keys are not plain strings."""
    if condition is None or not condition.strings:
        return None
    with _lock:
        index = _indexes(table).get(hash_key)
        stale = index is None or index.generation != _generation[0]
        if index is None or stale or len(index.values) != len(partition):
            if not _SortedKeys.usable(partition):
                _indexes(table).pop(hash_key, None)
                return None
            index = _indexes(table)[hash_key] = _SortedKeys(partition)
        span = _bounds(index.values, condition.comparison, condition.values)
        if span is None:
            return None
        low, high = span
        if condition.limit:
            if condition.forward:
                high = min(high, low + condition.limit)
            else:
                low = max(low, high - condition.limit)
        chosen = index.keys[max(0, low - 1) : max(low, high) + 1]
    return [partition[k] for k in chosen if k in partition]


def _bounds(values: list[str], comparison: str | None, test: list[Any]) -> tuple[int, int] | None:
    """[low, high) of the sorted values that can meet the comparison."""
    if comparison is None:
        return 0, len(values)
    if comparison in ("=", "EQ") and len(test) == 1:
        return bisect.bisect_left(values, test[0]), bisect.bisect_right(values, test[0])
    if comparison in ("<", "LT", "<=", "LE") and len(test) == 1:
        return 0, bisect.bisect_right(values, test[0])
    if comparison in (">", "GT", ">=", "GE") and len(test) == 1:
        return bisect.bisect_left(values, test[0]), len(values)
    if comparison == "BETWEEN" and len(test) == 2:
        return bisect.bisect_left(values, test[0]), bisect.bisect_right(values, test[1])
    if comparison == "BEGINS_WITH" and len(test) == 1:
        low = high = bisect.bisect_left(values, test[0])
        while high < len(values) and values[high].startswith(test[0]):
            high += 1
        return low, high
    return None


def main(argv: list[str]) -> None:
    """moto's server, patched, and taught DynamoDB's rules it lacks (infra/dynamodb_rules.py)."""
    from infra.dynamodb_rules import apply

    patch_moto()
    apply()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
