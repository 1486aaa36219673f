"""Idempotency-Key: a client's retry of a request returns the first answer instead of doing the
work again, and a retry of a request that failed is done again *at the first attempt's time*.

That last point is why this is not Powertools' idempotency utility: a reading sent without a
timestamp takes the receive time, so a retry after a failed attempt must reuse the first
attempt's receive time, or its readings would be stored twice under two timestamps. Powertools
deletes its record when an attempt fails; here the record keeps the time (and is released, not
deleted), so the retry stores the same readings, which are then duplicates of what the failed
attempt stored, if anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.ports import Begun, IdempotencyStore

# How long an unfinished attempt holds its key before a retry may take over (a crashed Lambda).
LEASE_MS = 30_000
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_key(key: str) -> str:
    """An Idempotency-Key: 1-255 printable ASCII characters (422 otherwise)."""
    if not _KEY.fullmatch(key):
        raise ValidationError("Idempotency-Key: must be 1-255 printable ASCII characters")
    return key


def fingerprint(*parts: str | bytes) -> str:
    """What identifies a request's content (its body and the options that change its work)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def run(
    store: IdempotencyStore,
    scope: str,
    key: str,
    request: str,
    now_ms: int,
    work: Callable[[int], tuple[int, Any]],
) -> tuple[int, Any, bool]:
    """(status, JSON body, replayed) of the request `request` (a fingerprint) under `key`.

    The first attempt runs `work(now_ms)` and keeps its answer; a retry gets that answer back
    (replayed); a retry of an attempt that failed runs `work` again with the first attempt's
    time. The same key with another request is refused (422), and while an attempt runs,
    another one with its key is refused (409).
    """
    begun: Begun = store.begin(scope, check_key(key), request, now_ms, LEASE_MS)
    if begun.state == "mismatch":
        raise ValidationError("Idempotency-Key: already used for another request")
    if begun.state == "busy":
        raise ConflictError("a request with this Idempotency-Key is in progress; retry shortly")
    if begun.state == "done":
        assert begun.status is not None
        return begun.status, json.loads(begun.body or "null"), True
    try:
        status, body = work(begun.now_ms)
    except BaseException:
        # Nothing kept: a retry does it again, at this attempt's time (a 4xx comes out the same;
        # readings a failed attempt stored come back as duplicates).
        store.release(scope, key)
        raise
    store.finish(scope, key, status, json.dumps(body))
    return status, body, False
