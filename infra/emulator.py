"""The embedded emulator: moto's server, with one fix: a Query reads only its own key range.

moto 5.2's `Table.query` starts from `Table.all_items()`, which collects and sorts every item of
the table on each call (~40 µs per item of the table, measured): in a table of a million items a
Query of one room's 15 minutes takes most of a minute, where DynamoDB reads the partition only.
Then it sorts the partition and tests the sort-key condition item by item in Python: a Query of a
room's last minute still costs ~20 µs per item the room holds, where DynamoDB reads only the
items of its key range.
While a Query of the base table runs, `all_items()` answers with the queried partition's items
inside the sort-key condition's range (string keys: sorted by their value, bounds found by
bisection), plus the nearest item on either side, so that moto's Limit and page-size checks see
the same next item as before; everything else (key conditions, filters, order, paging, the
response) stays moto's own. Index queries and scans are untouched. tests/deploy/test_emulator.py
checks that every answer is what unpatched moto gives.

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


def patch_moto() -> Callable[[], None]:
    """Make base-table Queries read their partition only; return a function that undoes it."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "partition_only", False):
        return lambda: None  # patched already (by whoever will undo it)
    original_all_items = Table.all_items
    original_query = Table.query
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> Any:
        hash_key = getattr(_partition, "key", None)
        if hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key, {})
            return _key_range(partition, _partition.condition) or list(partition.values())
        return original_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None:
            return original_query(self, *args, **kwargs)
        _partition.key = bound["hash_key"]
        # Legacy QueryFilter counts every partition item as scanned: read the whole partition.
        plain = not bound.get("filter_kwargs")
        _partition.condition = (
            (bound.get("range_comparison"), bound.get("range_objs") or []) if plain else None
        )
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _partition.key = _partition.condition = None

    query.partition_only = True  # type: ignore[attr-defined]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]

    def undo() -> None:
        Table.all_items = original_all_items  # type: ignore[method-assign]
        Table.query = original_query  # type: ignore[method-assign]

    return undo


def _key_range(partition: dict[Any, Any], condition: Any) -> list[Any] | None:
    """The partition's items whose string sort key can meet the condition, in order, with one
    neighbour on each side; None when the condition or the keys are not plain strings."""
    if condition is None:
        return None
    comparison, objs = condition
    values = [getattr(o, "value", None) for o in objs]
    if not all(isinstance(v, str) for v in values) or any(o.type != "S" for o in objs):
        return None
    ordered = []
    for item in partition.values():
        key = item.range_key
        if key is None or key.type != "S":
            return None
        ordered.append((key.value, item))
    ordered.sort(key=itemgetter(0))
    keys = [k for k, _ in ordered]
    if comparison is None:
        low, high = 0, len(keys)
    elif comparison in ("=", "EQ") and len(values) == 1:
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[0])
    elif comparison in ("<", "LT", "<=", "LE") and len(values) == 1:
        low, high = 0, bisect.bisect_right(keys, values[0])
    elif comparison in (">", "GT", ">=", "GE") and len(values) == 1:
        low, high = bisect.bisect_left(keys, values[0]), len(keys)
    elif comparison == "BETWEEN" and len(values) == 2:
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[1])
    elif comparison == "BEGINS_WITH" and len(values) == 1:
        low = high = bisect.bisect_left(keys, values[0])
        while high < len(keys) and keys[high].startswith(values[0]):
            high += 1
    else:
        return None
    return [item for _, item in ordered[max(0, low - 1) : max(low, high) + 1]]


def main(argv: list[str]) -> None:
    """moto's server, patched."""
    patch_moto()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
