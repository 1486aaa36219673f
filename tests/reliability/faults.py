"""A fault injector for boto3 clients: throttling, server errors and partial batch writes.

It hooks the client's own event system, so the code under test runs unchanged (same client,
same botocore retries, same error translation):

- `before-send.<service>`: for a share of the HTTP attempts (`rate`), answer with the error body
  the real service sends instead of sending the request. botocore parses it and raises
  ClientError; the app's retry policy (chalicelib/aws/retry.py) tries again. (botocore runs every
  before-send handler: with moto in-process, moto's handler still applies the attempt, so there a
  fault is "applied, answer lost"; against an endpoint over HTTP nothing is sent.)
- `before-parameter-build` + `after-call` on BatchWriteItem: hold back part of the items (they are
  not sent at all) and hand them back as `UnprocessedItems`, exactly what DynamoDB does when a
  partition is hot. The caller must resend them.

Faults are drawn from a seeded RNG, so a failing run can be replayed. Only DynamoDB's JSON error
shapes are defined here; add an `ErrorShape` per service (S3 XML, SQS JSON/query) to fault those.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse


@dataclass(frozen=True)
class ErrorShape:
    """One error as the service puts it on the wire: status, headers and body."""

    code: str
    status: int
    body: bytes
    headers: dict[str, str]


def dynamodb_error(code: str, status: int, namespace: str, message: str) -> ErrorShape:
    """A DynamoDB (JSON 1.0 protocol) error response."""
    body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": "FAULT0000000000000000000000000000000000000000000000000",
        "Content-Length": str(len(body)),
    }
    return ErrorShape(code, status, body, headers)


DYNAMODB_ERRORS: dict[str, ErrorShape] = {
    "ProvisionedThroughputExceededException": dynamodb_error(
        "ProvisionedThroughputExceededException",
        400,
        "com.amazonaws.dynamodb.v20120810",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": dynamodb_error(
        "ThrottlingException",
        400,
        "com.amazon.coral.availability",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "InternalServerError": dynamodb_error(
        "InternalServerError",
        500,
        "com.amazonaws.dynamodb.v20120810",
        "Internal server error",
    ),
}


class _Body:
    """The raw stream AWSResponse reads its content from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class FaultInjector:
    """Answers a share of a client's calls with errors; optionally defers batch-write items.

    rate: share of HTTP attempts (retries included) answered with an error from `errors`;
        botocore's own retries absorb most of these.
    call_rate: share of API calls that start an outage: that call and the next `streak` calls on
        the same thread fail, so the app's retries run out and it must answer 503 (or hand a
        queue message back).
    unprocessed_rate: share of BatchWriteItem calls that get part of their items back unprocessed.
    operations: only these operations are faulted (None: every operation).
    """

    rate: float = 0.2
    call_rate: float = 0.0
    seed: int = 0
    errors: Sequence[ErrorShape] = tuple(DYNAMODB_ERRORS.values())
    unprocessed_rate: float = 0.0
    operations: frozenset[str] | None = None
    streak: int = 12  # more calls than the most patient retry policy makes
    enabled: bool = True
    injected: Counter[str] = field(default_factory=Counter)
    deferred_items: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _clients: list[tuple[Any, str]] = field(default_factory=list, repr=False)
    _doomed: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def total(self) -> int:
        """Every fault injected so far (error answers plus partial batch writes)."""
        return sum(self.injected.values())

    def _applies(self, operation: str) -> bool:
        return self.enabled and (self.operations is None or operation in self.operations)

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return self._rng.random() < rate

    # -- hooks ----------------------------------------------------------------------------

    def _before_call(self, model: Any, **_: Any) -> None:
        # Once per API call: a doomed thread fails this call and the next ones of its streak.
        left = getattr(self._doomed, "left", 0)
        if not self._applies(model.name):
            self._doomed.value = False
            return
        if left <= 0 and self._draw(self.call_rate):
            left = self.streak
        self._doomed.value = left > 0
        self._doomed.left = max(0, left - 1)

    def _after_call(self, **_: Any) -> None:
        self._doomed.value = False

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        operation = _operation_of(request, event_name)
        if not self._applies(operation):
            return None
        if not getattr(self._doomed, "value", False) and not self._draw(self.rate):
            return None
        with self._lock:
            error = self._rng.choice(list(self.errors))
            self.injected[error.code] += 1
        return AWSResponse(request.url, error.status, dict(error.headers), _Body(error.body))

    def _before_batch_write(
        self, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if not self._applies("BatchWriteItem") or not self._draw(self.unprocessed_rate):
            return
        kept: dict[str, list[Any]] = {}
        held: dict[str, list[Any]] = {}
        for table, requests in params.get("RequestItems", {}).items():
            # Hold back the second half (at least one item): those are never sent.
            cut = len(requests) // 2
            kept[table], held[table] = list(requests[:cut]), list(requests[cut:])
        held = {t: r for t, r in held.items() if r}
        if not held:
            return
        # A new dict: the caller's own RequestItems must not change under it.
        params["RequestItems"] = {t: r for t, r in kept.items() if r}
        context["fault_unprocessed"] = held
        with self._lock:
            self.injected["UnprocessedItems"] += 1
            self.deferred_items += sum(len(r) for r in held.values())

    def _after_batch_write(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        held = context.pop("fault_unprocessed", None)
        if not held:
            return
        unprocessed = parsed.setdefault("UnprocessedItems", {})
        for table, requests in held.items():
            unprocessed.setdefault(table, []).extend(requests)

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, client: Any, service: str = "dynamodb") -> FaultInjector:
        """Start faulting `client` (a boto3 client of `service`)."""
        events = client.meta.events
        events.register(f"before-call.{service}", self._before_call)
        events.register(f"after-call.{service}", self._after_call)
        events.register(f"after-call-error.{service}", self._after_call)
        events.register(f"before-send.{service}", self._before_send)
        if service == "dynamodb":
            # An empty batch is invalid, so a batch of one item is never split.
            events.register(
                "before-parameter-build.dynamodb.BatchWriteItem", self._before_batch_write
            )
            events.register("after-call.dynamodb.BatchWriteItem", self._after_batch_write)
        self._clients.append((client, service))
        return self

    def detach(self) -> None:
        """Stop faulting every client this injector was attached to."""
        for client, service in self._clients:
            events = client.meta.events
            events.unregister(f"before-call.{service}", self._before_call)
            events.unregister(f"after-call.{service}", self._after_call)
            events.unregister(f"after-call-error.{service}", self._after_call)
            events.unregister(f"before-send.{service}", self._before_send)
            if service == "dynamodb":
                events.unregister(
                    "before-parameter-build.dynamodb.BatchWriteItem", self._before_batch_write
                )
                events.unregister("after-call.dynamodb.BatchWriteItem", self._after_batch_write)
        self._clients.clear()


def _operation_of(request: Any, event_name: str) -> str:
    # JSON-protocol services name the operation in X-Amz-Target ("DynamoDB_20120810.PutItem").
    target = request.headers.get("X-Amz-Target")
    if target:
        value = target.decode() if isinstance(target, bytes) else str(target)
        return value.rsplit(".", 1)[-1]
    return event_name.rsplit(".", 1)[-1]


@contextmanager
def faults(client: Any, service: str = "dynamodb", **options: Any) -> Iterator[FaultInjector]:
    """Fault `client` for the duration of the block."""
    injector = FaultInjector(**options).attach(client, service)
    try:
        yield injector
    finally:
        injector.detach()
