"""The one retry policy of every AWS call, and the deadline of the work it serves.

botocore's own retries are off (wiring builds every client with total_max_attempts=1): each call is
tried here, again after a capped full-jitter backoff while it is throttled, fails on the server
side or cannot connect, up to the policy's attempts. Batch calls that hand back unprocessed items
spend the same attempts (`Retrier.rounds`). Every unit of work sets a deadline (`budget`): an API
request its short one, so that it answers 503 + Retry-After well inside API Gateway's 29 s; a queue
or stream worker a longer one, from its Lambda's remaining time. No sleep and no new attempt go
past the deadline: the caller gets StorageUnavailableError instead.

Every call retried here is idempotent (a read, a conditional write or a write of a deterministic
key), so a retry never counts anything twice.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import StorageUnavailableError

T = TypeVar("T")
A = TypeVar("A")

# Throttling and server-side errors of DynamoDB, S3, SQS and SNS: worth another attempt.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionConflictException",
        "KMSThrottlingException",
        "AWS.SimpleQueueService.ServiceUnavailable",
        "AWS.SimpleQueueService.InternalError",
    }
)
# Resources that are not there: an outage of this deployment, answered 503 at once.
MISSING_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _clock() -> float:
    return time.monotonic()


def error_code(exc: ClientError) -> str:
    """The service's error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one call is tried."""

    attempts: int = 8
    base_s: float = 0.05
    cap_s: float = 2.0

    def delay(self, attempt: int) -> float:
        """The full-jitter pause after the `attempt`-th failure (0-based)."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


@dataclass(frozen=True, slots=True)
class Budget:
    """The deadline (time.monotonic seconds; None: none) and the policy of one unit of work."""

    policy: RetryPolicy
    deadline: float | None = None

    def remaining(self, clock: Callable[[], float] = _clock) -> float | None:
        """Seconds left before the deadline, or None without one."""
        return None if self.deadline is None else self.deadline - clock()


# Outside a request or a worker (the CLI, benchmarks): patient, no deadline.
DEFAULT_BUDGET = Budget(RetryPolicy())
_budget: contextvars.ContextVar[Budget] = contextvars.ContextVar("budget", default=DEFAULT_BUDGET)


@contextmanager
def budget(
    policy: RetryPolicy, seconds: float | None, clock: Callable[[], float] = _clock
) -> Iterator[Budget]:
    """Run the block's AWS calls under `policy`, all done within `seconds` (None: no deadline)."""
    deadline = None if seconds is None else clock() + seconds
    outer = _budget.get().deadline
    if outer is not None and (deadline is None or outer < deadline):
        deadline = outer  # a nested budget never outlives its caller's
    token = _budget.set(Budget(policy, deadline))
    try:
        yield _budget.get()
    finally:
        _budget.reset(token)


def current_budget() -> Budget:
    """The budget the calls made now run under."""
    return _budget.get()


def in_current_context(work: Callable[..., T]) -> Callable[..., T]:
    """`work` bound to the caller's budget (thread pools do not inherit context variables)."""
    context = contextvars.copy_context()

    def run(*args: Any) -> T:
        return context.copy().run(work, *args)

    return run


def each(pool: Executor | None, work: Callable[[A], T], items: Sequence[A]) -> Iterator[T]:
    """`work` over `items` in order: in turn without a pool, else a few at a time (boto3 clients
    are thread-safe), each under the caller's budget. Round trips overlap; the first error is
    raised."""
    if pool is None or len(items) <= 1:
        yield from map(work, items)
        return
    yield from pool.map(in_current_context(work), items)


class Retrier:
    """Calls AWS operations under the current budget: retries, backoff, deadline, translation."""

    def __init__(
        self,
        what: str,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.what = what  # "the table", "the bucket", ...: named in the 503's message
        self._sleep = sleep or _sleep
        self._clock = clock or _clock

    def call(self, operation: Callable[..., T], **kwargs: Any) -> T:
        """`operation(**kwargs)`, retried while throttled or failing on the server side.

        A ClientError that is neither (a failed condition, a missing key) reaches the caller
        unchanged; a missing resource, an exhausted policy or a passed deadline become
        StorageUnavailableError.
        """
        for attempt in self.rounds():
            try:
                return operation(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code in MISSING_CODES:
                    raise StorageUnavailableError(f"{self.what} is not available", 5) from exc
                if code not in RETRYABLE_CODES:
                    raise
                attempt.failed(exc)
            except BotoCoreError as exc:  # cannot connect, timed out, connection reset
                attempt.failed(exc)
        raise AssertionError("unreachable: rounds() raises when it runs out")

    def rounds(self) -> Iterator[Attempt]:
        """Attempts of one retried step; after a failed one (`attempt.failed(...)`) the next
        comes after a backoff, until the policy's attempts or the deadline run out."""
        current = _budget.get()
        policy = current.policy
        number = 0
        while True:
            left = current.remaining(self._clock)
            if left is not None and left <= 0:
                raise StorageUnavailableError(f"{self.what} is busy; retry shortly", 2)
            attempt = Attempt(number)
            yield attempt
            if attempt.error is None:
                return
            number += 1
            if number >= policy.attempts:
                raise self._unavailable(attempt.error)
            pause = policy.delay(number - 1)
            left = current.remaining(self._clock)
            if left is not None and pause >= left:
                raise self._unavailable(attempt.error)
            self._sleep(pause)

    def _unavailable(self, error: BaseException) -> StorageUnavailableError:
        if isinstance(error, BotoCoreError):
            message = f"{self.what} cannot be reached; retry shortly"
        else:
            message = f"{self.what} is busy; retry shortly"
        exc = StorageUnavailableError(message, 2)
        exc.__cause__ = error
        return exc


class Attempt:
    """One try of a retried step: mark it failed to have the step tried again."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.error: BaseException | None = None

    def failed(self, error: BaseException) -> None:
        """This try did not finish the step; `error` says why (named if retries run out)."""
        self.error = error
