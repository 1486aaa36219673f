"""What a benchmark returns (Measurement, Goal) and the timing helpers they share."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Goal:
    """A target for one figure: `value <op> target` must hold."""

    op: str  # "<=", ">=" or "=="
    target: float

    def met(self, value: float) -> bool:
        """Whether `value` reaches the goal."""
        if self.op == "<=":
            return value <= self.target
        if self.op == ">=":
            return value >= self.target
        return value == self.target

    def __str__(self) -> str:
        return f"{self.op} {fmt(self.target)}"


def at_most(target: float) -> Goal:
    """Goal: value <= target."""
    return Goal("<=", target)


def at_least(target: float) -> Goal:
    """Goal: value >= target."""
    return Goal(">=", target)


def equal_to(target: float) -> Goal:
    """Goal: value == target."""
    return Goal("==", target)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One figure of a benchmark: its results.json key, value, unit and (optional) goal."""

    key: str
    value: float
    unit: str
    label: str
    goal: Goal | None = None

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (None: no goal)."""
        return None if self.goal is None else self.goal.met(self.value)


def fmt(value: float) -> str:
    """A figure, readable: integers plain, small floats with 3 significant digits."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def median_seconds_per_call(
    cases: Mapping[str, tuple[Callable[[Any], object], Callable[[int], Sequence[Any]]]],
    *,
    number: int,
    repeat: int,
) -> dict[str, float]:
    """Median over `repeat` rounds of the mean seconds of one call, per case.

    A case is (call, make_inputs): make_inputs(n) gives n fresh inputs, untimed, so each timed
    call can get its own input (no duplicate writes). Cases take turns within every round, so
    a noisy neighbour slows them alike. Time is this process's CPU time: on a shared machine,
    time spent waiting for a core is not the handler's.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (call, make_inputs) in cases.items():
            inputs = make_inputs(number)
            gc.collect()
            start = time.process_time()
            for item in inputs:
                call(item)
            times[name].append((time.process_time() - start) / number)
    return {name: statistics.median(t) for name, t in times.items()}
