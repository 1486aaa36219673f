"""An independent computation of the statistics, straight from raw readings (the test oracle)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from chalicelib.domain.models import Metric, Reading

T0 = 1_795_601_700_000  # 2026-11-25T10:15:00Z
MINUTE = 60_000


def stored(batches: Iterable[Sequence[Reading]]) -> list[Reading]:
    """What the store holds after writing the batches in order: the first value of a key wins."""
    kept: dict[tuple[str, str, int, str], Reading] = {}
    for batch in batches:
        for r in batch:
            kept.setdefault((r.building, r.room, r.ts_ms, r.sensor_id), r)
    return list(kept.values())


@dataclass
class Expected:
    count: int
    mean: float | None
    low: float | None
    high: float | None
    stddev: float | None
    minute_means: list[float]


def expected(
    readings: Sequence[Reading], room: str, metric: Metric, start: int, end: int
) -> Expected:
    """Statistics of `metric` of `room` over [start, end); minute means of whole minutes only."""
    values = [
        v
        for r in readings
        if r.room == room and start <= r.ts_ms < end and (v := r.value(metric)) is not None
    ]
    by_minute: dict[int, list[float]] = {}
    for r in readings:
        v = r.value(metric)
        m = r.ts_ms - r.ts_ms % MINUTE
        if r.room == room and v is not None and start <= m and m + MINUTE <= end:
            by_minute.setdefault(m, []).append(v)
    means = [math.fsum(vs) / len(vs) for _, vs in sorted(by_minute.items())]
    if not values:
        return Expected(0, None, None, None, None, means)
    mean = math.fsum(values) / len(values)
    stddev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    return Expected(len(values), mean, min(values), max(values), stddev, means)


def random_readings(
    rng: random.Random, n: int, *, rooms: Sequence[str] = ("r1",), span_ms: int = 3 * 3_600_000
) -> list[Reading]:
    """Readings at random instants (some sharing an instant and sensor), random metrics."""
    out = []
    for _ in range(n):
        ts = T0 + rng.randrange(span_ms // 1000) * 1000 + rng.choice((0, 0, 0, rng.randrange(1000)))
        out.append(
            Reading(
                tenant="t",
                building="b1",
                room=rng.choice(rooms),
                sensor_id=rng.choice(("s1", "s2")),
                ts_ms=ts,
                temperature=round(rng.uniform(15, 30), 2) if rng.random() < 0.9 else None,
                humidity=round(rng.uniform(20, 70), 1) if rng.random() < 0.5 else None,
                co2=float(rng.randrange(400, 2000)) if rng.random() < 0.3 else None,
            )
        )
    for r in out:
        if r.temperature is None and r.humidity is None and r.co2 is None:
            out[out.index(r)] = replace(r, temperature=21.0)
    return out
