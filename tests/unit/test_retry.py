"""The one retry policy: attempts, backoff, the deadline, and what is never retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib import wiring
from chalicelib.aws import retry
from chalicelib.aws.retry import Retrier, RetryPolicy, budget
from chalicelib.domain.errors import StorageUnavailableError


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    clock = FakeTime()
    monkeypatch.setattr(retry, "time", clock)
    yield clock


def throttled(code: str = "ThrottlingException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "PutItem")


class Operation:
    """An AWS operation that fails `failures` times (with `error`), then answers."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or throttled()
        self.calls = 0

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return {"ok": True}


def test_a_throttled_call_is_tried_again_until_it_answers(fake_time: FakeTime) -> None:
    operation = Operation(failures=3)
    with budget(RetryPolicy(attempts=5), None):
        assert Retrier("the table").call(operation) == {"ok": True}
    assert operation.calls == 4
    assert len(fake_time.slept) == 3


def test_a_call_throttled_on_every_attempt_answers_503_after_the_policy_attempts(
    fake_time: FakeTime,
) -> None:
    operation = Operation(failures=100)
    with budget(RetryPolicy(attempts=5), None), pytest.raises(StorageUnavailableError) as caught:
        Retrier("the table").call(operation)
    assert operation.calls == 5
    assert caught.value.retry_after_s >= 1


def test_backoff_is_capped_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_s=0.05, cap_s=0.5)
    pauses = [policy.delay(n) for n in range(10) for _ in range(50)]
    assert all(0 <= p <= 0.5 for p in pauses)
    assert max(pauses) > 0.25  # later attempts do wait longer than the first ones


def test_no_attempt_and_no_sleep_goes_past_the_deadline(fake_time: FakeTime) -> None:
    # Given a call that is throttled for ever, a patient policy and a 15 s deadline
    operation = Operation(failures=10**6)
    started = fake_time.now
    with (
        budget(RetryPolicy(attempts=10**6, cap_s=2.0), 15.0),
        pytest.raises(StorageUnavailableError),
    ):
        Retrier("the table").call(operation)
    # Then it gave up within the deadline, having tried many times
    assert fake_time.now - started <= 15.0
    assert operation.calls > 10


def test_a_nested_budget_never_outlives_its_callers(fake_time: FakeTime) -> None:
    with budget(RetryPolicy(), 5.0), budget(RetryPolicy(), 60.0) as inner:
        assert inner.remaining() == pytest.approx(5.0)


@pytest.mark.parametrize("code", ["ConditionalCheckFailedException", "ValidationException"])
def test_an_answer_that_will_not_change_is_not_retried(fake_time: FakeTime, code: str) -> None:
    operation = Operation(failures=1, error=throttled(code))
    with pytest.raises(ClientError):
        Retrier("the table").call(operation)
    assert operation.calls == 1


def test_a_missing_table_is_503_at_once(fake_time: FakeTime) -> None:
    operation = Operation(failures=1, error=throttled("ResourceNotFoundException"))
    with pytest.raises(StorageUnavailableError, match="not available"):
        Retrier("the table").call(operation)
    assert operation.calls == 1


def test_a_connection_error_is_retried_and_named_in_the_503(fake_time: FakeTime) -> None:
    operation = Operation(failures=100, error=EndpointConnectionError(endpoint_url="http://x"))
    with (
        budget(RetryPolicy(attempts=3), None),
        pytest.raises(StorageUnavailableError, match="cannot be reached"),
    ):
        Retrier("the table").call(operation)
    assert operation.calls == 3


def test_rounds_of_unprocessed_items_share_the_attempts(fake_time: FakeTime) -> None:
    rounds = 0
    with budget(RetryPolicy(attempts=4), None), pytest.raises(StorageUnavailableError):
        for attempt in Retrier("the table").rounds():
            rounds += 1
            attempt.failed(RuntimeError("unprocessed items"))
    assert rounds == 4


def test_the_clients_leave_every_retry_to_the_policy() -> None:
    # botocore's own retries would multiply the policy's attempts and ignore its deadline
    client = wiring.aws_client("dynamodb")
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_api_requests_and_workers_run_under_their_own_budgets(
    monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    monkeypatch.setenv("ROOMTEMP_API_DEADLINE_SECONDS", "12")
    wiring.reset()
    with wiring.api_budget():
        request = retry.current_budget()
    with wiring.worker_budget(lambda: 900_000):
        worker = retry.current_budget()
    assert request.remaining() == pytest.approx(12.0)
    assert worker.policy.attempts > request.policy.attempts
    assert worker.remaining() is not None and worker.remaining() > 60  # type: ignore[operator]
