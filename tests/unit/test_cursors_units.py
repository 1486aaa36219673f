"""Opaque cursors and temperature unit conversions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MalformedRequestError
from chalicelib.domain.units import TemperatureUnit, from_celsius, to_celsius


@given(
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=20)), max_size=6)
)
def test_cursors_round_trip(payload: dict[str, object]) -> None:
    cursor = encode_cursor(payload, SECRET)
    assert decode_cursor(cursor, SECRET) == payload
    assert all(c.isalnum() or c in "-_" for c in cursor)  # URL-safe, no padding


SECRET = b"the deployment's secret"


def _sign(body: bytes, secret: bytes = SECRET) -> str:
    raw = hmac.new(secret, body, hashlib.sha256).digest()[:16] + body
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _old_checksum(body: bytes) -> str:
    # What cursors used to be: an unkeyed checksum anyone could compute.
    raw = hashlib.sha256(body).digest()[:6] + body
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "x",
        "not a cursor",
        "é",
        "!!!!",
        base64.urlsafe_b64encode(b'{"b":"hq"}').decode(),  # no tag
        _old_checksum(b'{"k":"rooms","a":"r1"}'),  # minted by anyone: an unkeyed checksum
        _sign(b'{"k":"rooms","a":"r1"}', b"another secret"),  # signed by someone else
        "A" * 5000,  # too long to be ours
        _sign(b"[1, 2]"),  # signed, but not an object
        _sign(b"\xff\xfe"),  # signed, but not UTF-8
        _sign(b"{"),  # signed, but not JSON
    ],
)
def test_forged_cursors_are_malformed(cursor: str) -> None:
    with pytest.raises(MalformedRequestError):
        decode_cursor(cursor, SECRET)


def test_an_edited_cursor_is_malformed() -> None:
    cursor = encode_cursor({"b": "hq", "r": "r1", "ts": 1}, SECRET)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    edited = raw.replace(b'"ts":1', b'"ts":2')
    assert edited != raw
    with pytest.raises(MalformedRequestError):
        decode_cursor(base64.urlsafe_b64encode(edited).decode(), SECRET)
    json.loads(edited[16:])  # the edit itself is well-formed JSON: only the tag catches it


@pytest.mark.parametrize(
    ("celsius", "unit", "expected"),
    [
        (0.0, TemperatureUnit.F, 32.0),
        (100.0, TemperatureUnit.F, 212.0),
        (-40.0, TemperatureUnit.F, -40.0),
        (0.0, TemperatureUnit.K, 273.15),
        (-273.15, TemperatureUnit.K, 0.0),
        (21.5, TemperatureUnit.C, 21.5),
    ],
)
def test_known_conversions(celsius: float, unit: TemperatureUnit, expected: float) -> None:
    assert from_celsius(celsius, unit) == pytest.approx(expected)
    assert to_celsius(expected, unit) == pytest.approx(celsius)


@given(st.floats(min_value=-273.15, max_value=1000), st.sampled_from(list(TemperatureUnit)))
def test_conversions_round_trip(celsius: float, unit: TemperatureUnit) -> None:
    assert to_celsius(from_celsius(celsius, unit), unit) == pytest.approx(celsius, abs=1e-9)
