"""In-memory adapters: the fakes for unit tests and benchmarks, held to the same contract suite."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.models import Position, Reading, WriteResult
from chalicelib.domain.reports import Report, ReportStatus
from chalicelib.domain.rollups import HOUR_MS, MINUTE_MS, Resolution, Rollup, floor_to

_Key = tuple[int, str]


class InMemoryReadingRepository:
    """Readings per room in a sorted list of (timestamp, sensor) keys."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], list[_Key]] = {}
        self._items: dict[tuple[str, str], dict[_Key, Reading]] = {}
        self._rollups: dict[tuple[str, str, Resolution], dict[int, Rollup]] = {}
        self._rooms: dict[str, set[str]] = {}

    def put_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings not stored yet; count the rest as duplicates."""
        accepted = duplicates = 0
        for reading in readings:
            room = (reading.building, reading.room)
            items = self._items.setdefault(room, {})
            key = (reading.ts_ms, reading.sensor_id)
            if key in items:
                duplicates += 1
                continue
            items[key] = reading
            keys = self._keys.setdefault(room, [])
            if not keys or keys[-1] < key:
                keys.append(key)
            else:
                bisect.insort(keys, key)
            accepted += 1
        self._refresh_rollups(readings)
        return WriteResult(accepted=accepted, duplicates=duplicates)

    def _refresh_rollups(self, readings: Sequence[Reading]) -> None:
        # Same rule as the DynamoDB adapter: recompute touched minutes, then their hours.
        minutes = {(r.building, r.room, floor_to(r.ts_ms, MINUTE_MS)) for r in readings}
        for building, room, minute in sorted(minutes):
            window = self.window(building, room, minute - 1, minute + MINUTE_MS - 1)
            stored = self._rollups.setdefault((building, room, Resolution.MINUTE), {})
            stored[minute] = Rollup.of_readings(window, whole_minute=True)
            self._rooms.setdefault(building, set()).add(room)
        for building, room, hour in sorted({(b, r, floor_to(m, HOUR_MS)) for b, r, m in minutes}):
            parts = self.rollups(building, room, Resolution.MINUTE, hour, hour + HOUR_MS)
            stored = self._rollups.setdefault((building, room, Resolution.HOUR), {})
            stored[hour] = Rollup.of_minutes(r for _, r in parts)

    def rollups(
        self, building: str, room: str, resolution: Resolution, from_ms: int, to_ms: int
    ) -> list[tuple[int, Rollup]]:
        """Stored rollups of `resolution` starting in [from_ms, to_ms), in time order."""
        stored = self._rollups.get((building, room, resolution), {})
        return [
            (start, copy_rollup(stored[start]))
            for start in sorted(stored)
            if from_ms <= start < to_ms
        ]

    def rooms_of(self, building: str) -> list[str]:
        """The building's rooms that have readings."""
        return sorted(self._rooms.get(building, ()))

    def window(self, building: str, room: str, after_ms: int, until_ms: int) -> list[Reading]:
        """Readings with after_ms < ts <= until_ms."""
        keys = self._keys.get((building, room), [])
        items = self._items.get((building, room), {})
        lo = bisect.bisect_left(keys, (after_ms + 1, ""))
        hi = bisect.bisect_left(keys, (until_ms + 1, ""))
        return [items[k] for k in keys[lo:hi]]

    def latest(self, building: str, room: str) -> Reading | None:
        """The most recent reading of the room."""
        keys = self._keys.get((building, room))
        if not keys:
            return None
        return self._items[(building, room)][keys[-1]]

    def page(
        self,
        building: str,
        room: str,
        from_ms: int,
        to_ms: int,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Reading], bool]:
        """Up to `limit` readings in [from_ms, to_ms) strictly after `after`."""
        keys = self._keys.get((building, room), [])
        items = self._items.get((building, room), {})
        if after is None:
            lo = bisect.bisect_left(keys, (from_ms, ""))
        else:
            lo = bisect.bisect_right(keys, (after.ts_ms, after.sensor_id))
        hi = bisect.bisect_left(keys, (to_ms, ""))
        selected = keys[lo:hi][: limit + 1]
        return [items[k] for k in selected[:limit]], len(selected) > limit

    def ping(self) -> None:
        """Always answers."""


def copy_rollup(rollup: Rollup) -> Rollup:
    """A deep copy, so callers merging into a result cannot change what is stored."""
    copy = Rollup()
    copy.merge(rollup)
    return copy


class InMemoryReportRepository:
    """Reports in dicts; results kept as the objects the AWS adapter would write."""

    def __init__(self) -> None:
        self._reports: dict[str, Report] = {}
        self.objects: dict[str, bytes] = {}

    def create(self, report: Report) -> bool:
        """Store a pending report unless the id exists."""
        if report.id in self._reports:
            return False
        self._reports[report.id] = report
        return True

    def get(self, report_id: str) -> Report | None:
        """The report, or None."""
        return self._reports.get(report_id)

    def _update(self, report_id: str, **changes: Any) -> None:
        report = self._reports.get(report_id)
        if report is None or report.status in (ReportStatus.COMPLETED, ReportStatus.FAILED):
            return
        self._reports[report_id] = report.model_copy(update=changes)

    def mark_running(self, report_id: str, started_ms: int) -> None:
        """Status running."""
        self._update(report_id, status=ReportStatus.RUNNING, started_ms=started_ms)

    def release(self, report_id: str) -> None:
        """Back to pending."""
        self._update(report_id, status=ReportStatus.PENDING, started_ms=None)

    def complete(self, report_id: str, finished_ms: int, result: dict[str, Any], csv: str) -> None:
        """Keep the result and CSV, then mark completed."""
        self.objects[f"reports/{report_id}.json"] = json.dumps(result).encode()
        self.objects[f"reports/{report_id}.csv"] = csv.encode()
        self._update(report_id, status=ReportStatus.COMPLETED, finished_ms=finished_ms)

    def fail(self, report_id: str, finished_ms: int, message: str) -> None:
        """Mark failed."""
        self._update(report_id, status=ReportStatus.FAILED, finished_ms=finished_ms, error=message)

    def result(self, report_id: str) -> dict[str, Any] | None:
        """The stored JSON result."""
        raw = self.objects.get(f"reports/{report_id}.json")
        return None if raw is None else dict(json.loads(raw))

    def csv_link(self, report_id: str) -> str:
        """A memory: link (there is no server to fetch it from)."""
        return f"memory://reports/{report_id}.csv"


class InMemoryReportQueue:
    """Queued report jobs in a list; tests hand them to the worker."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        """Append the job."""
        self.messages.append(message)
