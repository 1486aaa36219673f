"""DynamoDB adapter of the idempotency store: one item per (scope, key), kept a day (TTL).

Every change is conditional, so two attempts of one key can never both run: the first PutItem
wins; a later attempt may only take over a released attempt, or one whose lease ran out (its
Lambda died), by a conditional update on exactly what it read.
"""

from __future__ import annotations

import hashlib

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable, Item
from chalicelib.ports import Begun

KEEP_S = 86_400


class DynamoIdempotencyStore:
    """Attempts and answers of Idempotency-Key requests, in the one table."""

    def __init__(self, table: DynamoTable) -> None:
        self._table = table

    def _key(self, scope: str, key: str) -> Item:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        pk, sk = keys.idempotency_key(scope, digest)
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def begin(self, scope: str, key: str, request: str, now_ms: int, lease_ms: int) -> Begun:
        item_key = self._key(scope, key)
        item = {
            **item_key,
            "request": {"S": request},
            "state": {"S": "running"},
            "now": {"N": str(now_ms)},
            "started": {"N": str(now_ms)},
            "expires_at": {"N": str(now_ms // 1000 + KEEP_S)},
        }
        if self._table.put_if_absent(item):
            return Begun("new", now_ms)
        found = self._table.get(item_key)
        if found is None:  # expired and removed between the two calls: start afresh
            return self.begin(scope, key, request, now_ms, lease_ms)
        first_ms = int(found["now"]["N"])
        if found["request"]["S"] != request:
            return Begun("mismatch", first_ms)
        state = found["state"]["S"]
        if state == "done":
            return Begun("done", first_ms, int(found["status"]["N"]), found["body"]["S"])
        started = int(found["started"]["N"])
        if state == "running" and now_ms - started < lease_ms:
            return Begun("busy", first_ms)
        taken = self._table.update(
            item_key,
            UpdateExpression="SET #state = :running, started = :now",
            ConditionExpression="#state = :state AND started = :started",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":running": {"S": "running"},
                ":now": {"N": str(now_ms)},
                ":state": {"S": state},
                ":started": {"N": str(started)},
            },
        )
        return Begun("resume", first_ms) if taken else Begun("busy", first_ms)

    def finish(self, scope: str, key: str, status: int, body: str) -> None:
        self._table.update(
            self._key(scope, key),
            UpdateExpression="SET #state = :done, #status = :status, body = :body",
            ExpressionAttributeNames={"#state": "state", "#status": "status"},
            ExpressionAttributeValues={
                ":done": {"S": "done"},
                ":status": {"N": str(status)},
                ":body": {"S": body},
            },
        )

    def release(self, scope: str, key: str) -> None:
        self._table.update(
            self._key(scope, key),
            UpdateExpression="SET #state = :released",
            ConditionExpression="#state = :running",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":released": {"S": "released"},
                ":running": {"S": "running"},
            },
        )
