"""In-memory fakes of the ingest ports, for unit tests (held to the same behaviour as storage/)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any

from chalicelib.ingest.ports import ObjectGoneError


class InMemoryObjectStore:
    """A bucket as a dict of key -> bytes; ETags are MD5 hex like S3's single-part ETags."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.opened: list[tuple[str, int]] = []

    def put(self, key: str, data: bytes) -> str:
        """Store an object; return its ETag."""
        self.objects[key] = data
        return hashlib.md5(data).hexdigest()

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        """A stream of the object from `start`."""
        if key not in self.objects or (etag and self.etag(key) != etag):
            raise ObjectGoneError(f"object {key} is gone or was replaced")
        self.opened.append((key, start))
        return io.BytesIO(self.objects[key][start:])

    def etag(self, key: str) -> str:
        """The object's ETag."""
        if key not in self.objects:
            raise ObjectGoneError(f"object {key} is gone")
        return hashlib.md5(self.objects[key]).hexdigest()

    def get_json(self, key: str) -> Any | None:
        """The JSON under `key`, or None."""
        data = self.objects.get(key)
        return None if data is None else json.loads(data)

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as JSON."""
        self.objects[key] = json.dumps(value).encode("utf-8")


class InMemoryQueue:
    """A queue as a list of bodies."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: Sequence[str]) -> None:
        """Append the bodies."""
        self.bodies.extend(bodies)

    def take(self) -> list[str]:
        """Remove and return every body queued so far."""
        bodies, self.bodies = self.bodies, []
        return bodies
