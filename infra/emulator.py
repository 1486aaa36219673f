"""The embedded emulator: moto's server, with one fix: a Query reads only its own partition.

moto 5.2's `Table.query` starts from `Table.all_items()`, which collects and sorts every item of
the table on each call (~40 µs per item of the table, measured): in a table of a million items a
Query of one room's 15 minutes takes most of a minute, where DynamoDB reads the partition only.
While a Query of the base table runs, `all_items()` answers with the queried partition's items;
everything else (key conditions, filters, order, paging, the response) stays moto's own. Index
queries and scans are untouched. tests/deploy/test_emulator.py checks that every answer is what
unpatched moto gives.

    python -m infra.emulator -H 127.0.0.1 -p 4566    # the same arguments as `python -m moto.server`
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable
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
            return list(self.items.get(hash_key, {}).values())
        return original_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None:
            return original_query(self, *args, **kwargs)
        _partition.key = bound["hash_key"]
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _partition.key = None

    query.partition_only = True  # type: ignore[attr-defined]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]

    def undo() -> None:
        Table.all_items = original_all_items  # type: ignore[method-assign]
        Table.query = original_query  # type: ignore[method-assign]

    return undo


def main(argv: list[str]) -> None:
    """moto's server, patched."""
    patch_moto()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
