"""In-memory adapters: the fakes for unit tests and benchmarks, held to the same contract suite."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from chalicelib.domain.models import Position, Reading, WriteResult

_Key = tuple[int, str]


class InMemoryReadingRepository:
    """Readings per room in a sorted list of (timestamp, sensor) keys."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], list[_Key]] = {}
        self._items: dict[tuple[str, str], dict[_Key, Reading]] = {}

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
        return WriteResult(accepted=accepted, duplicates=duplicates)

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
