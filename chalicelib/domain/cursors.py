"""Opaque page cursors: URL-safe base64 of a small JSON object and its HMAC-SHA256 tag.

The tag is keyed by the deployment's cursor secret, so a client can carry a cursor back but can
neither mint nor alter one: anything else is answered 400 before it reaches the table. The views
still check every field of a decoded cursor against the request, so even a leaked secret could
only move a page within what the caller may read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from chalicelib.domain.errors import MalformedRequestError

TAG_BYTES = 16  # 128 bits of HMAC-SHA256
NOT_OURS = "cursor: not a cursor this API issued"


def _tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()[:TAG_BYTES]


def encode_cursor(payload: dict[str, Any], secret: bytes) -> str:
    """Encode a JSON-ready dict as an opaque cursor signed with `secret`."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(_tag(secret, body) + body).decode().rstrip("=")


def decode_cursor(text: str, secret: bytes) -> dict[str, Any]:
    """The payload of a cursor signed with `secret`; MalformedRequestError (400) otherwise."""
    if len(text) > 2048:
        raise MalformedRequestError(NOT_OURS)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tag, body = raw[:TAG_BYTES], raw[TAG_BYTES:]
        if not hmac.compare_digest(tag, _tag(secret, body)):
            raise ValueError("tag")
        payload = json.loads(body)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise MalformedRequestError(NOT_OURS) from None
    if not isinstance(payload, dict):
        raise MalformedRequestError(NOT_OURS)
    return payload
