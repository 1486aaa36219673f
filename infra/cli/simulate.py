"""`simulate` command: N buildings x M rooms x S sensors posting readings to a running API.

    python -m infra.cli simulate --url http://127.0.0.1:8000 --key KEY \
        --buildings 2 --rooms 3 --sensors 1 --rate 10 --batch 100 --duration 60 \
        --faults drop=0.05,dup=0.05,late=0.02,bad=0.01 --backfill 24

Temperatures follow a daily cycle with noise, rise in office hours (occupancy) together with CO2
and humidity. Faults drop, duplicate, delay (late, out of order) or corrupt readings. At the end
it prints what it sent and what the API answered. HTTP is the standard library's (urllib), so it
runs wherever Python does; an ingest key is enough (buildings and rooms are created on first use).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.timeutil import format_ms, now_ms

HOUR_MS = 3_600_000
RETRY_STATUSES = {429, 502, 503, 504}
# (status, body); status 0: no answer (network error).
Transport = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]]


class KeyRefusedError(Exception):
    """The API refused the key (401/403): going on would only repeat that."""


@dataclass(frozen=True, slots=True)
class RoomProfile:
    """One simulated room: its character and its sensors."""

    building: str
    room: str
    sensors: tuple[str, ...]
    base_c: float  # night-time temperature
    swing_c: float  # half the daily cycle's range
    occupancy: float  # 0 (store room) .. 1 (crowded meeting room)
    humidity: float  # mean relative humidity, %


def make_rooms(
    buildings: int, rooms: int, sensors: int, seed: int, prefix: str = "sim"
) -> list[RoomProfile]:
    """`buildings` x `rooms` rooms of `sensors` sensors each, their character drawn from `seed`."""
    rng = random.Random(seed)
    profiles = []
    for b in range(1, buildings + 1):
        for r in range(1, rooms + 1):
            building, room = f"{prefix}-b{b}", f"r{100 * b + r}"
            profiles.append(
                RoomProfile(
                    building=building,
                    room=room,
                    sensors=tuple(f"{building}-{room}-s{s}" for s in range(1, sensors + 1)),
                    base_c=round(rng.uniform(19.0, 22.0), 2),
                    swing_c=round(rng.uniform(0.8, 2.0), 2),
                    occupancy=round(rng.uniform(0.2, 1.0), 2),
                    humidity=round(rng.uniform(35.0, 50.0), 1),
                )
            )
    return profiles


def occupancy_at(ts_ms: int) -> float:
    """How full offices are at `ts_ms` (UTC): 0 at night and weekends, 1 on weekdays 09-17."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    if moment.weekday() >= 5:
        return 0.0
    hour = moment.hour + moment.minute / 60
    return max(0.0, min(1.0, hour - 8.0, 18.0 - hour))


class Climate:
    """Readings of simulated rooms: deterministic for a seed and the same calls."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def reading(self, profile: RoomProfile, sensor: str, ts_ms: int) -> dict[str, Any]:
        """One reading of `sensor` in `profile`'s room at `ts_ms`, as POST /readings takes it."""
        hour = (ts_ms % (24 * HOUR_MS)) / HOUR_MS
        daily = math.sin(2 * math.pi * (hour - 9.0) / 24)  # coldest ~03:00, warmest ~15:00
        people = occupancy_at(ts_ms) * profile.occupancy
        noise = self.rng.gauss
        temperature = profile.base_c + profile.swing_c * (1 + daily) + 1.5 * people + noise(0, 0.15)
        humidity = profile.humidity - 4 * daily + 6 * people + noise(0, 1.0)
        co2 = 420 + 900 * people + abs(noise(0, 20))
        return {
            "building": profile.building,
            "room": profile.room,
            "sensor_id": sensor,
            "timestamp": format_ms(ts_ms),
            "temperature": round(temperature, 2),
            "humidity": round(max(0.0, min(100.0, humidity)), 1),
            "co2": round(co2),
        }


@dataclass(frozen=True, slots=True)
class Faults:
    """Probabilities, per reading, of each fault."""

    drop: float = 0.0  # never sent
    dup: float = 0.0  # sent twice (the API must count it once)
    late: float = 0.0  # held back and sent with a later batch: late and out of order
    bad: float = 0.0  # an invalid value (the API must reject it)

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`drop=0.05,dup=0.05,late=0.02,bad=0.01` (any subset; empty: no faults)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"unknown fault {name!r}: use drop, dup, late, bad")
            probability = float(value)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name}: a probability from 0 to 1")
            values[name] = probability
        return cls(**values)


@dataclass
class Summary:
    """What the simulator sent and what the API answered."""

    generated: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    corrupted: int = 0
    sent: int = 0
    requests: int = 0
    retries: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unanswered: int = 0  # readings in requests that got no usable answer
    statuses: Counter[int] = field(default_factory=Counter)
    rejection_codes: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        """As `--json` prints it."""
        return {
            "sent": {
                "generated": self.generated,
                "dropped": self.dropped,
                "duplicated": self.duplicated,
                "delayed": self.delayed,
                "corrupted": self.corrupted,
                "sent": self.sent,
                "requests": self.requests,
                "retries": self.retries,
            },
            "answered": {
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "rejected": self.rejected,
                "unanswered": self.unanswered,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "rejection_codes": dict(sorted(self.rejection_codes.items())),
            },
        }

    def text(self) -> str:
        """A few readable lines."""
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "none"
        return "\n".join(
            [
                f"generated {self.generated} readings: dropped {self.dropped}, duplicated "
                f"{self.duplicated}, delayed {self.delayed}, corrupted {self.corrupted}",
                f"sent {self.sent} readings in {self.requests} requests ({self.retries} retries)",
                f"API: accepted {self.accepted}, duplicates {self.duplicates}, rejected "
                f"{self.rejected}, unanswered {self.unanswered}",
                f"HTTP statuses: {statuses}",
            ]
        )


def corrupt(reading: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The reading with one invalid value, of a kind a broken device sends."""
    broken = dict(reading)
    kind = rng.randrange(4)
    if kind == 0:
        broken["temperature"] = -300.0  # below absolute zero
    elif kind == 1:
        broken["humidity"] = 140.0
    elif kind == 2:
        broken["temperature"] = "warm"
    else:
        broken["timestamp"] = "yesterday"
    return broken


class Simulator:
    """Generates readings for its rooms, applies faults, posts batches, keeps the summary."""

    def __init__(
        self,
        rooms: list[RoomProfile],
        transport: Transport,
        *,
        seed: int = 0,
        batch: int = 100,
        faults: Faults | None = None,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rooms = rooms
        self.transport = transport
        self.climate = Climate(seed)
        self.rng = random.Random(seed + 1)
        self.batch = max(1, min(1000, batch))
        self.faults = faults or Faults()
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.held: list[dict[str, Any]] = []
        self.summary = Summary()
        # (building, room) -> (from_ms, until_ms, extra °C): a room made to overheat for a while.
        self.overheats: dict[tuple[str, str], tuple[int, int, float]] = {}

    def overheat(self, building: str, room: str, from_ms: int, until_ms: int, by_c: float) -> None:
        """Make a room read `by_c` warmer in [from_ms, until_ms), then back to normal (alerts)."""
        self.overheats[(building, room)] = (from_ms, until_ms, by_c)

    def readings_at(self, ts_ms: int) -> list[dict[str, Any]]:
        """One reading per sensor at `ts_ms` (before faults)."""
        readings = [
            self.climate.reading(room, sensor, ts_ms)
            for room in self.rooms
            for sensor in room.sensors
        ]
        for reading in readings:
            window = self.overheats.get((reading["building"], reading["room"]))
            if window is not None and window[0] <= ts_ms < window[1]:
                reading["temperature"] = round(reading["temperature"] + window[2], 2)
        return readings

    def with_faults(self, readings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """What is sent now: these after their faults, then readings held back earlier (so those
        arrive late and after newer ones)."""
        earlier, self.held = self.held, []
        out: list[dict[str, Any]] = []
        faults, rng, summary = self.faults, self.rng, self.summary
        for reading in readings:
            summary.generated += 1
            if rng.random() < faults.drop:
                summary.dropped += 1
                continue
            if rng.random() < faults.bad:
                summary.corrupted += 1
                reading = corrupt(reading, rng)
            if rng.random() < faults.late:
                summary.delayed += 1
                self.held.append(reading)
                continue
            out.append(reading)
            if rng.random() < faults.dup:
                summary.duplicated += 1
                self.held.append(dict(reading))  # the retry arrives with the next batch
        return out + earlier

    def tick(self, ts_ms: int) -> None:
        """Generate, fault and post one reading per sensor at `ts_ms`."""
        self.send(self.with_faults(self.readings_at(ts_ms)))

    def backfill(self, from_ms: int, to_ms: int, step_ms: int) -> None:
        """History: one reading per sensor every `step_ms` in [from_ms, to_ms)."""
        pending: list[dict[str, Any]] = []
        for ts in range(from_ms, to_ms, step_ms):
            pending.extend(self.with_faults(self.readings_at(ts)))
            if len(pending) >= self.batch:
                self.send(pending)
                pending = []
        self.send(pending)

    def flush(self) -> None:
        """Send what is still held back."""
        held, self.held = self.held, []
        self.send(held)

    def send(self, readings: list[dict[str, Any]]) -> None:
        """Post `readings` in batches and count the answers."""
        for start in range(0, len(readings), self.batch):
            self._post(readings[start : start + self.batch])

    def _post(self, chunk: list[dict[str, Any]]) -> None:
        summary = self.summary
        summary.sent += len(chunk)
        body: dict[str, Any] = {}
        for attempt in range(1, self.max_attempts + 1):
            summary.requests += 1
            status, body = self.transport(chunk)
            summary.statuses[status] += 1
            if status not in RETRY_STATUSES and status != 0:
                break
            if attempt < self.max_attempts:
                summary.retries += 1  # safe: the API stores each reading once
                self.sleep(min(2.0, 0.2 * 2**attempt))
        if status in (401, 403):
            summary.unanswered += len(chunk)
            raise KeyRefusedError(f"{status}: {body.get('Message') or body.get('message')}")
        if "accepted" in body:
            rejected = body.get("rejected") or []
            summary.accepted += int(body["accepted"])
            summary.duplicates += int(body.get("duplicates", 0))
            summary.rejected += len(rejected)
            summary.rejection_codes.update(str(r.get("Code")) for r in rejected)
        else:
            summary.unanswered += len(chunk)


def http_transport(url: str, key: str, timeout: float = 15.0) -> Transport:
    """POST {"readings": [...]} to `url`/readings with the key (standard library only)."""
    endpoint = url.rstrip("/") + "/readings"

    def post(chunk: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        data = json.dumps({"readings": chunk}).encode()
        request = urllib.request.Request(
            endpoint,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return 0, {}

    return post


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def run(
    simulator: Simulator,
    *,
    rate_s: float,
    duration_s: float,
    backfill_hours: float = 0.0,
    backfill_step_s: float = 300.0,
    clock: Callable[[], int] = now_ms,
    sleep: Callable[[float], object] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> Summary:
    """Backfill (if asked), then post live readings every `rate_s` for `duration_s` (0: forever)."""
    start = clock()
    if backfill_hours > 0:
        step = max(1000, int(backfill_step_s * 1000))
        simulator.backfill(start - int(backfill_hours * HOUR_MS), start, step)
    deadline = None if duration_s <= 0 else start + int(duration_s * 1000)
    while not should_stop():
        now = clock()
        if deadline is not None and now >= deadline:
            break
        simulator.tick(now)
        sleep(rate_s)
    simulator.flush()
    return simulator.summary


def register(subparsers: Any) -> None:
    """Add the `simulate` command."""
    parser = subparsers.add_parser("simulate", help="post simulated readings to a running API")
    parser.add_argument("--url", required=True, help="the API's base URL (with /api if deployed)")
    parser.add_argument("--key", required=True, help="an API key with the ingest scope")
    parser.add_argument("--buildings", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=3, help="rooms per building")
    parser.add_argument("--sensors", type=int, default=1, help="sensors per room")
    parser.add_argument("--rate", type=float, default=10.0, help="seconds between readings")
    parser.add_argument("--batch", type=int, default=100, help="readings per request (max 1000)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds; 0 runs until Ctrl-C")
    parser.add_argument("--faults", default="", help="e.g. drop=0.05,dup=0.05,late=0.02,bad=0.01")
    parser.add_argument("--backfill", type=float, default=0.0, help="hours of history first")
    parser.add_argument("--backfill-step", type=float, default=300.0, help="seconds, in history")
    parser.add_argument("--seed", type=int, default=None, help="for repeatable data")
    parser.add_argument("--prefix", default="sim", help="building ids are <prefix>-b1, ...")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--overheat", default="", help="BUILDING/ROOM to run hot from the start (alert demos)"
    )
    parser.add_argument("--overheat-minutes", type=float, default=5.0, help="how long it runs hot")
    parser.add_argument("--overheat-by", type=float, default=6.0, help="°C above its normal")
    parser.set_defaults(func=simulate)


def simulate(args: argparse.Namespace) -> int:
    """Run the simulator from the command line; exit code 1 if any request went unanswered."""
    try:
        faults = Faults.parse(args.faults)
    except ValueError as exc:
        print(f"--faults: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    simulator = Simulator(
        make_rooms(args.buildings, args.rooms, args.sensors, seed, args.prefix),
        http_transport(args.url, args.key),
        seed=seed,
        batch=args.batch,
        faults=faults,
    )
    if args.overheat:
        building, _, room = args.overheat.partition("/")
        start = now_ms()
        simulator.overheat(
            building, room, start, start + int(args.overheat_minutes * 60_000), args.overheat_by
        )
    try:
        summary = run(
            simulator,
            rate_s=args.rate,
            duration_s=args.duration,
            backfill_hours=args.backfill,
            backfill_step_s=args.backfill_step,
        )
    except KeyboardInterrupt:
        simulator.flush()
        summary = simulator.summary
    except KeyRefusedError as exc:
        print(f"the API refused the key ({exc}); use a key with the ingest scope", file=sys.stderr)
        summary = simulator.summary
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.text())
    return 1 if summary.unanswered else 0
