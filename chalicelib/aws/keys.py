"""Every key string of the table is built and parsed here, and only here.

Readings: pk = `<tenant>#<building>#<room>`, sk = `<YYYY-MM-DDTHH:MM:SS.mmmZ>#<sensor_id>`.
The client's composite `building#room` key, prefixed with the tenant: building ids belong to
their tenant, so no other tenant's data can ever share a partition with them, whatever ids
change hands. Identifiers are 1-64 of [A-Za-z0-9_.:-], so `#` never occurs inside one: the pk is
injective and the sk sorts by time, then sensor. Other item types (registry, keys, reports) use
partition keys that start with `@`, a character identifiers cannot start with, so they can never
collide with a room's partition; rollups live in the room's own partition, sorting after its
readings.
"""

from __future__ import annotations

import calendar
import hashlib

from chalicelib.domain.timeutil import format_ms

SEP = "#"
# Larger than every character an identifier may hold: closes a prefix range.
HIGH = "~"
_TS_WIDTH = 24  # len("2026-11-25T16:17:13.123Z")


def room_pk(tenant: str, building: str, room: str) -> str:
    """Partition key of a tenant's room: its readings and their rollups."""
    return f"{tenant}{SEP}{building}{SEP}{room}"


def parse_room_pk(pk: str) -> tuple[str, str, str]:
    """(tenant, building, room) of a room partition key."""
    tenant, building, room = pk.split(SEP)
    return tenant, building, room


def reading_sk(ts_ms: int, sensor_id: str) -> str:
    """Sort key of one reading: fixed-width UTC timestamp, then the sensor."""
    return f"{format_ms(ts_ms)}{SEP}{sensor_id}"


def parse_reading_sk(sk: str) -> tuple[int, str]:
    """(epoch ms, sensor_id) of a reading sort key."""
    ts, sensor_id = sk[:_TS_WIDTH], sk[_TS_WIDTH + 1 :]
    seconds = calendar.timegm(
        (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]), int(ts[17:19]))
    )
    return seconds * 1000 + int(ts[20:23]), sensor_id


def window_bounds(after_ms: int, until_ms: int) -> tuple[str, str]:
    """Inclusive sk bounds (for BETWEEN) of readings with after_ms < ts <= until_ms."""
    return format_ms(after_ms + 1), format_ms(until_ms) + SEP + HIGH


def range_bounds(from_ms: int, to_ms: int) -> tuple[str, str]:
    """Inclusive sk bounds (for BETWEEN) of readings with from_ms <= ts < to_ms."""
    return format_ms(from_ms), format_ms(to_ms - 1) + SEP + HIGH


# The attribute that tells which write request stored a reading (see DynamoTable.insert_new).
WRITE_TOKEN = "w"

# Every reading sk lies between these; other item types in a room partition must sort outside.
READINGS_LOW = "0"
READINGS_HIGH = "9999-12-31T23:59:59.999Z" + SEP + HIGH


def is_reading_key(pk: str, sk: str) -> bool:
    """Whether (pk, sk) is a reading's key (not a rollup's, a registry item's, ...)."""
    return not pk.startswith("@") and READINGS_LOW <= sk <= READINGS_HIGH


# -- registry and access items ---------------------------------------------------------------
# Index `gsi1` (sparse: only items that carry gsi1pk) lists a tenant's buildings and keys.
GSI1 = "gsi1"
META = "@meta"
ROOM_PREFIX = "r#"
SENSOR_PREFIX = "s#"
TENANTS_PK = "@tenants"


def tenant_key(tenant: str) -> tuple[str, str]:
    """(pk, sk) of a tenant's item; all tenants share one small partition."""
    return TENANTS_PK, tenant


def building_key(tenant: str, building: str) -> tuple[str, str]:
    """(pk, sk) of a tenant's building's item (its rooms share the partition)."""
    return f"@b{SEP}{tenant}{SEP}{building}", META


def building_index(tenant: str, building: str) -> tuple[str, str]:
    """(gsi1pk, gsi1sk) that lists a building under its tenant."""
    return f"@t{SEP}{tenant}{SEP}buildings", building


def room_key(tenant: str, building: str, room: str) -> tuple[str, str]:
    """(pk, sk) of a room's registry item, in its building's partition."""
    return building_key(tenant, building)[0], ROOM_PREFIX + room


def sensor_key(tenant: str, sensor_id: str) -> tuple[str, str]:
    """(pk, sk) of a registered sensor: sensor ids are unique within a tenant."""
    return f"@t{SEP}{tenant}", SENSOR_PREFIX + sensor_id


def api_key_key(key_id: str) -> tuple[str, str]:
    """(pk, sk) of an API key's item, looked up by key id on every request."""
    return f"@k{SEP}{key_id}", META


def api_key_index(tenant: str | None, key_id: str) -> tuple[str, str]:
    """(gsi1pk, gsi1sk) that lists a key under its tenant (operator keys under `@operator`)."""
    owner = "@operator" if tenant is None else f"@t{SEP}{tenant}"
    return f"{owner}{SEP}keys", key_id


# -- rollups: in the room's own partition, sorting after every reading ('h', 'm' > '9') ---------
# Minute items `m#YYYY-MM-DDTHH:MM`, hour items `h#YYYY-MM-DDTHH`: fixed width, so text order is
# time order, and one Query reads a contiguous run of one resolution only.
MINUTE_PREFIX = "m" + SEP
HOUR_PREFIX = "h" + SEP
_MINUTE_WIDTH = 16  # len("2026-11-25T16:17")
_HOUR_WIDTH = 13  # len("2026-11-25T16")


def minute_sk(minute_ms: int) -> str:
    """Sort key of a room's minute rollup starting at `minute_ms`."""
    return MINUTE_PREFIX + format_ms(minute_ms)[:_MINUTE_WIDTH]


def hour_sk(hour_ms: int) -> str:
    """Sort key of a room's hour rollup starting at `hour_ms`."""
    return HOUR_PREFIX + format_ms(hour_ms)[:_HOUR_WIDTH]


def parse_rollup_sk(sk: str) -> int:
    """Start (epoch ms) of the minute or hour a rollup sort key names."""
    ts = sk[len(MINUTE_PREFIX) :]
    minute = int(ts[14:16]) if len(ts) == _MINUTE_WIDTH else 0
    seconds = calendar.timegm(
        (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), minute, 0)
    )
    return seconds * 1000


def is_hour_sk(sk: str) -> bool:
    """Whether a sort key names an hour rollup (else a minute rollup)."""
    return sk.startswith(HOUR_PREFIX)


# -- a building's rooms: the registry's room items (room_key) are the index ------------------
def building_rooms_pk(tenant: str, building: str) -> str:
    """Partition holding the building's room items (see room_key)."""
    return building_key(tenant, building)[0]


def room_index_sk(room: str) -> str:
    """Sort key of one room's registry item in its building's partition."""
    return ROOM_PREFIX + room


def parse_room_index_sk(sk: str) -> str:
    """The room a room item's sort key names."""
    return sk[len(ROOM_PREFIX) :]


# -- Idempotency-Key attempts: one partition each --------------------------------------------
def idempotency_key(scope: str, key_digest: str) -> tuple[str, str]:
    """(pk, sk) of one Idempotency-Key's attempt item (scope: the caller's tenant)."""
    return f"@idem{SEP}{scope}{SEP}{key_digest}", "attempt"


# -- reports --------------------------------------------------------------------------------
REPORT_SK = "report"


def report_pk(report_id: str) -> str:
    """Partition key of one report's status item."""
    return f"@report{SEP}{report_id}"


def report_index(tenant: str, building: str, report_id: str) -> tuple[str, str]:
    """(gsi1pk, gsi1sk) that lists a report under its tenant and building."""
    return f"@t{SEP}{tenant}{SEP}reports", f"{building}{SEP}{report_id}"


def reports_of_building(tenant: str, building: str) -> tuple[str, str]:
    """(gsi1pk, gsi1sk prefix) of a building's reports (report_index)."""
    pk, sk = report_index(tenant, building, "")
    return pk, sk


# -- alerts -----------------------------------------------------------------------------------
# One partition per tenant's building holds its rules (room and building-wide: one Query reads
# every rule that applies to its rooms), each (rule, room)'s state and the alert events. Deleting
# the building deletes the partition. A rule found by id goes through a small pointer item;
# gsi1 (sparse) lists every tenant's silent rules in a few shards (the minute's schedule reads
# them all), the states whose notification is not yet enqueued, and each tenant's alert events.
ALERT_RULE_PREFIX = "rule" + SEP
ALERT_STATE_PREFIX = "state" + SEP
ALERT_EVENT_PREFIX = "event" + SEP


def alerts_pk(tenant: str, building: str) -> str:
    """Partition of a tenant's building's alert rules, states and events."""
    return f"@al{SEP}{tenant}{SEP}{building}"


def alert_rule_key(tenant: str, building: str, rule_id: str) -> tuple[str, str]:
    """(pk, sk) of a rule in its building's alert partition."""
    return alerts_pk(tenant, building), ALERT_RULE_PREFIX + rule_id


def parse_alert_rule_sk(sk: str) -> str:
    """The rule id a rule's sort key names."""
    return sk[len(ALERT_RULE_PREFIX) :]


def alert_rule_pointer(tenant: str, rule_id: str) -> tuple[str, str]:
    """(pk, sk) of the item that tells which building a tenant's rule id belongs to."""
    return f"@alr{SEP}{tenant}{SEP}{rule_id}", META


SILENT_RULE_SHARDS = 4  # the minute's silence check reads this many index partitions


def silent_rule_index(tenant: str, building: str, rule_id: str) -> tuple[str, str]:
    """(gsi1pk, gsi1sk) that lists a silent rule with every tenant's: one of a few shards (by
    tenant and building), so the schedule's Queries do not grow with the tenants."""
    digest = hashlib.sha256(f"{tenant}{SEP}{building}".encode()).digest()
    shard = digest[0] % SILENT_RULE_SHARDS
    return f"@silent-rules{SEP}{shard}", f"{tenant}{SEP}{building}{SEP}{rule_id}"


def silent_rule_partitions() -> list[str]:
    """Every gsi1 partition of the silent-rules list."""
    return [f"@silent-rules{SEP}{shard}" for shard in range(SILENT_RULE_SHARDS)]


UNSENT_STATES_PK = f"@alerts{SEP}unsent"  # gsi1: states whose notification is not yet enqueued


def unsent_state_index(
    tenant: str, building: str, rule_id: str, room: str, at_ms: int
) -> tuple[str, str]:
    """(gsi1pk, gsi1sk) listing a (rule, room) state whose last transition is not yet on the
    notify queue, by the time it was written."""
    return UNSENT_STATES_PK, SEP.join((format_ms(at_ms), tenant, building, rule_id, room))


def parse_alert_state(pk: str, sk: str) -> tuple[str, str, str, str]:
    """(tenant, building, rule_id, room) of a state item's key."""
    _, tenant, building = pk.split(SEP)
    _, rule_id, room = sk.split(SEP)
    return tenant, building, rule_id, room


def alert_state_key(tenant: str, building: str, rule_id: str, room: str) -> tuple[str, str]:
    """(pk, sk) of one (rule, room)'s state."""
    return alerts_pk(tenant, building), f"{ALERT_STATE_PREFIX}{rule_id}{SEP}{room}"


def alert_states_of_rule(rule_id: str) -> str:
    """Sort-key prefix of every state of one rule."""
    return f"{ALERT_STATE_PREFIX}{rule_id}{SEP}"


def alert_event_key(tenant: str, building: str, event_id: str) -> tuple[str, str]:
    """(pk, sk) of one alert event."""
    return alerts_pk(tenant, building), ALERT_EVENT_PREFIX + event_id


def parse_alert_event_sk(sk: str) -> str:
    """The event id an event's sort key names."""
    return sk[len(ALERT_EVENT_PREFIX) :]


def alert_events_pk(tenant: str) -> str:
    """gsi1 partition listing a tenant's alert events."""
    return f"@t{SEP}{tenant}{SEP}alerts"


def alert_event_index_sk(state: str, building: str, room: str, fired_ms: int, event_id: str) -> str:
    """gsi1 sort key of an event: by state, building, room, then firing time."""
    return SEP.join((state, building, room, format_ms(fired_ms), event_id))


def alert_event_prefix(state: str, building: str | None, room: str | None) -> str:
    """gsi1 sort-key prefix of the events of a state (and building, and room)."""
    parts = [state]
    if building is not None:
        parts.append(building)
        if room is not None:
            parts.append(room)
    return SEP.join(parts) + SEP
