"""Opaque page cursors: URL-safe base64 of a small JSON object with a checksum.

The checksum catches truncated or hand-edited cursors early; the services still check that what a
cursor points at belongs to the request, so a well-formed forgery can reveal nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from chalicelib.domain.errors import MalformedRequestError

_CHECK_BYTES = 6


def encode_cursor(payload: dict[str, Any]) -> str:
    """Encode a JSON-ready dict as an opaque cursor."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    check = hashlib.sha256(body).digest()[:_CHECK_BYTES]
    return base64.urlsafe_b64encode(check + body).decode().rstrip("=")


def decode_cursor(text: str) -> dict[str, Any]:
    """Decode a cursor made by encode_cursor; MalformedRequestError (400) for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        check, body = raw[:_CHECK_BYTES], raw[_CHECK_BYTES:]
        if hashlib.sha256(body).digest()[:_CHECK_BYTES] != check:
            raise ValueError("checksum")
        payload = json.loads(body)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MalformedRequestError("cursor: not a cursor this API issued") from None
    if not isinstance(payload, dict):
        raise MalformedRequestError("cursor: not a cursor this API issued")
    return payload
