"""DynamoDB behaviour that moto lacks, added to moto wherever it stands in for DynamoDB: the
embedded emulator (`make run`, e2e, benchmarks) and every in-process test (tests/conftest.py).

- Conditional writes are atomic: moto's server answers requests on threads and tests its
  condition, then writes, without a lock, so two writers of one key could both succeed; here a
  table's put_item runs under a lock, as DynamoDB serializes writes to an item.
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

    DynamoDBBackend.batch_execute_statement = batch_execute_statement  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]

    def undo() -> None:
        DynamoDBBackend.batch_execute_statement = original  # type: ignore[method-assign]
        Table.put_item = original_put  # type: ignore[method-assign]
        _applied.clear()

    _applied.append(undo)
    return undo


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}}
