"""The table's stream consumer: rollups (and, later, everything else derived from new readings)
follow the readings every ingest path wrote.

A stream batch is folded room by room (several rooms at a time: `concurrency`): the room's
readings go to RollupRepository.refresh, which recomputes the minutes and hours they touch from
what is stored, so a replayed, retried or bisected batch never skews an aggregate. A room that
fails (a busy table, a bug) is reported by the sequence number of its first record: the stream
delivers that record and every later one again (rooms already done recompute to the same values
and write nothing); what keeps failing goes to the failure destination of the event source
mapping.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from chalicelib import observability
from chalicelib.domain.models import Reading, TableChange, earliest_sequence
from chalicelib.ports import RollupRepository

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class FoldOutcome:
    """What one stream batch did."""

    readings: int = 0
    rooms: int = 0
    rollups_written: int = 0
    failed_from: str | None = None  # the stream position to deliver again from
    failed_rooms: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant, b, r)


def fold(
    rollups: RollupRepository, changes: Sequence[TableChange], *, concurrency: int = 1
) -> FoldOutcome:
    """Bring the rollups of every room with new readings in `changes` up to date, up to
    `concurrency` rooms at a time (each room's refresh is a few round trips of its own)."""
    outcome = FoldOutcome()
    rooms: dict[tuple[str, str, str], list[TableChange]] = {}
    for change in changes:
        if (r := change.reading) is not None:
            rooms.setdefault((r.tenant, r.building, r.room), []).append(change)
    if not rooms:
        return outcome
    # Every record of the batch is at or before the newest one: its rooms' rollups hold what
    # was written until then once they are refreshed (a room's records come in order).
    as_of = max(c.written_ms for c in changes)

    def refresh(readings: list[Reading]) -> int | Exception:
        try:
            return rollups.refresh(readings, as_of_ms=as_of)
        except Exception as exc:  # this room is delivered again; the others go on
            return exc

    groups = [[c.reading for c in room if c.reading is not None] for room in rooms.values()]
    for (place, room_changes), readings, result in zip(
        rooms.items(), groups, _each(refresh, groups, concurrency), strict=True
    ):
        if isinstance(result, Exception):
            observability.logger().warning(
                "rollup refresh failed",
                tenant=place[0],
                building=place[1],
                room=place[2],
                error=repr(result)[:300],
            )
            outcome.failed_rooms.append(place)
            first = room_changes[0].sequence
            outcome.failed_from = earliest_sequence(outcome.failed_from, first)
            continue
        outcome.rollups_written += result
        outcome.readings += len(readings)
        outcome.rooms += 1
    return outcome


def _each(work: Callable[[T], R], items: list[T], concurrency: int) -> list[R]:
    """`work` over `items`, in order, up to `concurrency` at a time, each in a copy of the
    caller's context (so under its retry budget)."""
    if concurrency <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(concurrency, len(items))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
        return [future.result() for future in futures]
