"""The one table through the low-level client: every DynamoDB call of every adapter goes here.

Each call runs under the retry policy and deadline of the current unit of work (aws/retry.py);
batch calls resend what DynamoDB hands back unprocessed under the same policy. Items are
DynamoDB-JSON dicts; the adapters build them (aws/items.py) from keys built in aws/keys.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.aws.retry import Retrier, each, error_code

Item = dict[str, dict[str, Any]]
C = TypeVar("C")
R = TypeVar("R")
BATCH_WRITE_MAX = 25  # DynamoDB's limit per BatchWriteItem
BATCH_GET_MAX = 100  # DynamoDB's limit per BatchGetItem
# Statement errors of a BatchExecuteStatement worth sending again (BatchStatementError codes).
RETRYABLE_STATEMENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)


class _Unprocessed(Exception):
    """Part of a batch came back unprocessed (a hot partition): it is sent again."""


class DynamoTable:
    """One DynamoDB table: calls retried and translated, paging and batching done."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        retrier: Retrier | None = None,
        concurrency: int = 1,
    ) -> None:
        self.client = client
        self.name = name
        self.retrier = retrier or Retrier("the table")
        self._pool = ThreadPoolExecutor(concurrency, "dynamo") if concurrency > 1 else None

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call on this table (TableName is added), under the retry policy."""
        result: dict[str, Any] = self.retrier.call(
            getattr(self.client, operation), TableName=self.name, **kwargs
        )
        return result

    # -- single items -------------------------------------------------------------------------

    def put(self, item: Item, **condition: Any) -> bool:
        """PutItem; False (nothing written) when the given ConditionExpression fails."""
        try:
            self.call("put_item", Item=item, **condition)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_if_absent(self, item: Item, *, token: str | None = None) -> bool:
        """PutItem unless an item with this key exists; whether it was written.

        With `token` (the name of an attribute unique to this write), a refusal whose stored
        item carries this write's token counts as written: an earlier attempt of this very call
        stored it and its answer was lost.
        """
        try:
            self.call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD" if token else "NONE",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            if token is None:
                return False
            old = exc.response.get("Item") or {}
            return bool(old) and old.get(token) == item.get(token)
        return True

    def update(self, key: Item, **expression: Any) -> bool:
        """UpdateItem; False (nothing changed) when the given ConditionExpression fails."""
        try:
            self.call("update_item", Key=key, **expression)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, key: Item, *, consistent: bool = True, **options: Any) -> Item | None:
        """GetItem (strongly consistent unless told otherwise); None if absent."""
        item: Item | None = self.call(
            "get_item", Key=key, ConsistentRead=consistent, **options
        ).get("Item")
        return item

    def delete(self, key: Item) -> None:
        """DeleteItem (absent items are fine)."""
        self.call("delete_item", Key=key)

    # -- queries ------------------------------------------------------------------------------

    def query(self, **kwargs: Any) -> Iterator[Item]:
        """Every item a Query matches, page after page (stop iterating to stop reading)."""
        while True:
            response = self.call("query", **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def query_page(self, **kwargs: Any) -> dict[str, Any]:
        """One Query call's response (Items, LastEvaluatedKey)."""
        return self.call("query", **kwargs)

    # -- batches ------------------------------------------------------------------------------

    def batch_get(
        self, keys: Sequence[Item], *, projection: str | None = None, consistent: bool = False
    ) -> list[Item]:
        """The items of these keys that exist: BatchGetItem, 100 keys a call."""
        options: dict[str, Any] = {"ConsistentRead": consistent}
        if projection:
            options["ProjectionExpression"] = projection
        chunks = [list(keys[i : i + BATCH_GET_MAX]) for i in range(0, len(keys), BATCH_GET_MAX)]
        found: list[Item] = []
        for items in self.each(lambda chunk: self._get_chunk(chunk, options), chunks):
            found.extend(items)
        return found

    def _get_chunk(self, chunk: list[Item], options: dict[str, Any]) -> list[Item]:
        pending: dict[str, Any] = {self.name: {"Keys": chunk, **options}}
        found: list[Item] = []
        for attempt in self.retrier.rounds():
            response = self.retrier.call(self.client.batch_get_item, RequestItems=pending)
            found.extend(response.get("Responses", {}).get(self.name, []))
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                attempt.failed(_Unprocessed("unprocessed keys"))
        return found

    def batch_write(self, puts: Sequence[Item] = (), deletes: Sequence[Item] = ()) -> None:
        """Put and delete items, 25 a call; unprocessed ones are resent until all are done."""
        requests = [{"PutRequest": {"Item": i}} for i in puts]
        requests += [{"DeleteRequest": {"Key": k}} for k in deletes]
        chunks = [
            requests[i : i + BATCH_WRITE_MAX] for i in range(0, len(requests), BATCH_WRITE_MAX)
        ]
        for _ in self.each(self._write_chunk, chunks):
            pass

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.name: chunk}
        for attempt in self.retrier.rounds():
            response = self.retrier.call(self.client.batch_write_item, RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if pending:
                attempt.failed(_Unprocessed("unprocessed items"))

    def insert_new(self, items: Sequence[Item], *, token: str | None = None) -> list[bool]:
        """Write each item unless one with its key exists: PartiQL INSERTs, 25 a
        BatchExecuteStatement, each refused on its own (DuplicateItem) when its key is taken.
        Whether each item was written, in order. A race between two writers of one key leaves
        the first one's item and tells the second it was a duplicate.

        With `token` (an attribute unique to this write), refused items are read back
        (consistent, keys and token only): those holding this write's token were stored by an
        earlier attempt whose answer was lost, and count as written.
        """
        chunks = [
            list(range(i, min(i + BATCH_WRITE_MAX, len(items))))
            for i in range(0, len(items), BATCH_WRITE_MAX)
        ]
        written = [False] * len(items)
        outcomes = self.each(lambda c: self._insert_chunk([items[i] for i in c]), chunks)
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            for index, stored in zip(chunk, outcome, strict=True):
                written[index] = stored
        refused = [i for i, stored in enumerate(written) if not stored]
        if token is not None and refused:
            keys = [{"pk": items[i]["pk"], "sk": items[i]["sk"]} for i in refused]
            found = self.batch_get(keys, projection=f"pk, sk, {token}", consistent=True)
            mine = {
                (f["pk"]["S"], f["sk"]["S"]) for f in found if f.get(token) == items[0].get(token)
            }
            for i in refused:
                written[i] = (items[i]["pk"]["S"], items[i]["sk"]["S"]) in mine
        return written

    def _insert_chunk(self, items: list[Item]) -> list[bool]:
        written = [False] * len(items)
        pending = list(range(len(items)))
        for attempt in self.retrier.rounds():
            statements = [self._insert_statement(items[i]) for i in pending]
            response = self.retrier.call(self.client.batch_execute_statement, Statements=statements)
            again: list[int] = []
            for index, answer in zip(pending, response.get("Responses", []), strict=True):
                error = answer.get("Error")
                if error is None:
                    written[index] = True
                elif error.get("Code") == "DuplicateItem":
                    written[index] = False
                elif error.get("Code") in RETRYABLE_STATEMENT_ERRORS:
                    again.append(index)
                else:
                    raise ClientError(
                        {"Error": {"Code": error.get("Code"), "Message": error.get("Message")}},
                        "BatchExecuteStatement",
                    )
            pending = again
            if pending:
                attempt.failed(_Unprocessed(f"{len(pending)} statements throttled"))
        return written

    def _insert_statement(self, item: Item) -> dict[str, Any]:
        names = list(item)
        fields = ", ".join(f"'{name}': ?" for name in names)
        return {
            "Statement": f'INSERT INTO "{self.name}" VALUE {{{fields}}}',
            "Parameters": [item[name] for name in names],
        }

    def each(self, work: Callable[[C], R], chunks: list[C]) -> Iterator[R]:
        """`work` over the chunks, a few at a time (retry.each)."""
        return each(self._pool, work, chunks)

    def ping(self) -> None:
        """DescribeTable: StorageUnavailableError unless the table answers."""
        self.call("describe_table")
