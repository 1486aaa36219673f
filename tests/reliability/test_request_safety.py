"""Request size limit, no stack traces in answers, no key secrets in logs."""

from __future__ import annotations

import json
import logging

import pytest

from .conftest import Api


def test_body_over_the_limit_answers_413_before_it_is_parsed(api: Api) -> None:
    from chalicelib.api.http import MAX_BODY_BYTES

    # Given: a body one byte over the limit that is not even JSON
    raw = b"{" * (MAX_BODY_BYTES + 1)

    # When
    status, _, body = api.request("POST", "/readings", key="ingest", raw=raw)

    # Then: 413, not the 400 that parsing it would give
    assert (status, body["Code"]) == (413, "PayloadTooLarge")


def test_body_at_the_limit_is_parsed(api: Api) -> None:
    from chalicelib.api.http import MAX_BODY_BYTES

    reading = {"building": "b-1", "room": "r-1", "temperature": 21.5}
    text = json.dumps(reading)
    raw = (text[:-1] + " " * (MAX_BODY_BYTES - len(text)) + "}").encode()
    assert len(raw) == MAX_BODY_BYTES

    status, _, body = api.request("POST", "/readings", key="ingest", raw=raw)

    assert status == 201, body


def test_unexpected_error_answers_generic_500_without_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app
    from chalicelib.services import readings as services

    # Given: a room, and a bug deep inside a use case
    reading = {"building": "b-1", "room": "r-1", "temperature": 21.5}
    assert api.request("POST", "/readings", key="ingest", body=reading)[0] == 201

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals: table roomtemp at 10.0.0.1")

    monkeypatch.setattr(services, "window_average", broken)
    assert app.debug is False

    # When
    status, _, body = api.request("GET", "/buildings/b-1/rooms/r-1/average", key="admin")

    # Then: Chalice's generic answer, nothing of the exception
    text = json.dumps(body)
    assert status == 500
    assert body == {"Code": "InternalServerError", "Message": "An internal server error occurred."}
    assert "Traceback" not in text and "secret internals" not in text


def test_key_secrets_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # Given: every logger at DEBUG (botocore logs request bodies there)
    caplog.set_level(logging.DEBUG)

    # When: keys are used, refused and revoked
    api.request(
        "POST", "/readings", key="ingest", body={"building": "b", "room": "r", "temperature": 20}
    )
    api.request("GET", "/buildings", key="read")
    api.request("POST", "/buildings", key="read", body={"building": "b-2"})
    status, _, created = api.request("POST", "/keys", key="admin", body={"scopes": ["read"]})
    assert status == 201
    api.request("DELETE", f"/keys/{created['key_id']}", key="admin")
    api.keys["revoked"] = created["key"]
    api.request("GET", "/buildings", key="revoked")

    # Then: no secret appears in any log record
    logged = caplog.text
    assert len(caplog.records) > 0
    for secret in api.keys.values():
        assert secret not in logged
