"""Repository ports the services need; adapters: InMemory* (memory.py), Dynamo* (dynamo/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chalicelib.domain.models import Position, Reading, WriteResult


class ReadingRepository(Protocol):
    """Stores readings once each and reads them back by room and time."""

    def put_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings whose (building, room, sensor, ts) is new; count the rest as duplicates.

        The first value stored wins; a duplicate is counted, never written again.
        """
        ...

    def window(self, building: str, room: str, after_ms: int, until_ms: int) -> list[Reading]:
        """The room's readings with after_ms < ts <= until_ms, in time order."""
        ...

    def latest(self, building: str, room: str) -> Reading | None:
        """The room's most recent reading, or None."""
        ...

    def page(
        self,
        building: str,
        room: str,
        from_ms: int,
        to_ms: int,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Reading], bool]:
        """Up to `limit` readings of [from_ms, to_ms) after `after`, and whether more follow."""
        ...

    def ping(self) -> None:
        """Raise StorageUnavailableError unless the store answers."""
        ...
