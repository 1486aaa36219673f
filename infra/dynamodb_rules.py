"""DynamoDB behaviour that moto lacks, added to moto wherever it stands in for DynamoDB: the
embedded emulator (`make run`, e2e, benchmarks) and every in-process test (tests/conftest.py).

- Conditional writes are atomic: moto's server answers requests on threads and tests its
  condition, then writes, without a lock, so two writers of one key could both succeed; here a
  table's put_item runs under a lock, as DynamoDB serializes writes to an item.
- A Query's key condition and start key follow DynamoDB's rules (API Query; "Working with
  queries"): key values of at most 2048 (partition) / 1024 (sort) bytes, BETWEEN with its low
  bound at most its high bound, and an ExclusiveStartKey that names the queried partition and
  lies inside the sort-key condition; moto answers all of these where DynamoDB answers
  ValidationException, so a forged position would have passed every test unseen.
- PartiQL batch INSERT: moto 5.2 rejects parameters (`?`) in an INSERT and never refuses an
  existing key, where DynamoDB answers each statement of a BatchExecuteStatement on its own and
  refuses an INSERT of an existing key with the statement error `DuplicateItem`
  (docs: "PartiQL insert statements for DynamoDB"; API: BatchStatementError). The readings'
  first-value-wins batch write (chalicelib/aws/readings.py) relies on exactly that.

`apply()` is idempotent and returns a function that undoes it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

BATCH_STATEMENTS_MAX = 25
_INSERT = re.compile(
    r'^\s*INSERT\s+INTO\s+"?([A-Za-z0-9_.-]+)"?\s+VALUE\s+\{(.*)\}\s*$', re.I | re.S
)
_PARAMETER = re.compile(r"'([^']+)'\s*:\s*\?")
_applied: list[Callable[[], None]] = []
_writes = threading.RLock()


def apply() -> Callable[[], None]:
    """Teach moto the rules above; return the undo (a no-op if they were taught already)."""
    if _applied:
        return lambda: None
    from moto.dynamodb.exceptions import ConditionalCheckFailed, MockValidationException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.batch_execute_statement
    original_put = Table.put_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return original_put(self, *args, **kwargs)

    def batch_execute_statement(self: Any, statements: list[dict[str, Any]]) -> Any:
        inserts = [_INSERT.match(s.get("Statement", "")) for s in statements]
        if not any(inserts):
            return original(self, statements)
        if len(statements) > BATCH_STATEMENTS_MAX:
            raise MockValidationException(
                f"Member must have length less than or equal to {BATCH_STATEMENTS_MAX}"
            )
        if not all(inserts):
            raise MockValidationException("A batch must be all reads or all writes")
        responses: list[dict[str, Any]] = []
        for statement, match in zip(statements, inserts, strict=True):
            assert match is not None
            table_name, fields = match.groups()
            names = _PARAMETER.findall(fields)
            parameters = statement.get("Parameters") or []
            if not names or len(names) != len(parameters) or fields.count("?") != len(names):
                responses.append(_error("ValidationError", "Unsupported INSERT statement"))
                continue
            table = self.get_table(table_name)
            item = dict(zip(names, parameters, strict=True))
            try:
                self.put_item(
                    table_name,
                    item,
                    condition_expression="attribute_not_exists(#key)",
                    expression_attribute_names={"#key": table.hash_key_attr},
                )
            except ConditionalCheckFailed:
                responses.append(
                    {
                        "TableName": table_name,
                        **_error("DuplicateItem", "Duplicate primary key exists in table"),
                    }
                )
                continue
            except MockValidationException as exc:
                responses.append(_error("ValidationError", str(exc.message)))
                continue
            responses.append({"TableName": table_name})
        return responses

    original_query = DynamoDBBackend.query

    def query(self: Any, table_name: str, hash_key_dict: Any, *args: Any, **kwargs: Any) -> Any:
        names = [
            "range_comparison",
            "range_value_dicts",
            "limit",
            "exclusive_start_key",
            "scan_index_forward",
            "projection_expressions",
            "index_name",
        ]
        bound = dict(zip(names, args, strict=False)) | kwargs
        _check_query(
            self.get_table(table_name),
            hash_key_dict,
            bound.get("range_comparison"),
            bound.get("range_value_dicts") or [],
            bound.get("exclusive_start_key"),
            bound.get("index_name"),
            MockValidationException,
        )
        return original_query(self, table_name, hash_key_dict, *args, **kwargs)

    DynamoDBBackend.batch_execute_statement = batch_execute_statement  # type: ignore[method-assign]
    DynamoDBBackend.query = query  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]

    def undo() -> None:
        DynamoDBBackend.batch_execute_statement = original  # type: ignore[method-assign]
        DynamoDBBackend.query = original_query  # type: ignore[method-assign]
        Table.put_item = original_put  # type: ignore[method-assign]
        _applied.clear()

    _applied.append(undo)
    return undo


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}}


PARTITION_KEY_BYTES = 2048
SORT_KEY_BYTES = 1024


def _scalar(value: dict[str, Any]) -> Any:
    (kind, raw), *_ = value.items()
    if kind == "N":
        return float(raw)
    if kind == "B":
        return raw if isinstance(raw, bytes) else str(raw).encode()
    return raw


def _size(value: dict[str, Any]) -> int:
    raw = _scalar(value)
    if isinstance(raw, str):
        return len(raw.encode("utf-8"))
    if isinstance(raw, bytes):
        return len(raw)
    return len(str(raw))


def _check_query(
    table: Any,
    hash_key: dict[str, Any] | None,
    comparison: str | None,
    values: list[dict[str, Any]],
    start_key: dict[str, Any] | None,
    index_name: str | None,
    invalid: Any,
) -> None:
    if hash_key and _size(hash_key) > PARTITION_KEY_BYTES:
        raise invalid("One or more parameter values were invalid: partition key too large")
    if any(_size(v) > SORT_KEY_BYTES for v in values):
        raise invalid("One or more parameter values were invalid: sort key too large")
    if comparison == "BETWEEN" and len(values) == 2 and _scalar(values[0]) > _scalar(values[1]):
        raise invalid(
            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be "
            "greater than or equal to lower bound"
        )
    if not start_key or index_name or hash_key is None:
        return
    hash_name, range_name = table.hash_key_attr, table.range_key_attr
    if hash_name not in start_key or (range_name and range_name not in start_key):
        raise invalid("The provided starting key is invalid")
    outside = invalid(
        "The provided starting key is outside query boundaries based on provided conditions"
    )
    if _scalar(start_key[hash_name]) != _scalar(hash_key):
        raise outside
    if not range_name or comparison is None or not values:
        return
    if _size(start_key[range_name]) > SORT_KEY_BYTES:
        raise invalid("The provided starting key is invalid: sort key too large")
    position, bounds = _scalar(start_key[range_name]), [_scalar(v) for v in values]
    if not _satisfies(position, comparison, bounds):
        raise outside


def _satisfies(value: Any, comparison: str, bounds: list[Any]) -> bool:
    low = bounds[0]
    checks: dict[str, Callable[[], bool]] = {
        "EQ": lambda: value == low,
        "=": lambda: value == low,
        "LT": lambda: value < low,
        "<": lambda: value < low,
        "LE": lambda: value <= low,
        "<=": lambda: value <= low,
        "GT": lambda: value > low,
        ">": lambda: value > low,
        "GE": lambda: value >= low,
        ">=": lambda: value >= low,
        "BETWEEN": lambda: low <= value <= bounds[1],
        "BEGINS_WITH": lambda: isinstance(value, str) and value.startswith(low),
    }
    check = checks.get(comparison.upper())
    return True if check is None else bool(check())
