"""The simulator's overheating room (make demo's alert): hot in its window only."""

from __future__ import annotations

from infra.cli.simulate import Simulator, make_rooms

T0 = 1_795_600_800_000
MINUTE = 60_000


def temperatures(simulator: Simulator, ts_ms: int) -> dict[str, float]:
    return {r["room"]: r["temperature"] for r in simulator.readings_at(ts_ms)}


def test_an_overheating_room_runs_hot_in_its_window_and_then_back_to_normal() -> None:
    rooms = make_rooms(1, 2, 1, seed=7)
    normal = Simulator(rooms, lambda chunk: (201, {}), seed=7)
    hot = Simulator(rooms, lambda chunk: (201, {}), seed=7)
    hot.overheat("sim-b1", "r101", T0 + MINUTE, T0 + 5 * MINUTE, 6.0)
    for minute, extra in ((0, 0.0), (1, 6.0), (4, 6.0), (5, 0.0)):
        at = T0 + minute * MINUTE
        base, shifted = temperatures(normal, at), temperatures(hot, at)
        assert round(shifted["r101"] - base["r101"], 2) == extra
        assert shifted["r102"] == base["r102"]
