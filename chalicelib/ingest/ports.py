"""Ports of the ingest paths: the bucket and the queue. Adapters: storage/ (AWS), memory (tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ObjectGoneError(Exception):
    """The object is missing, or was replaced since the event that named it (ETag differs)."""


class ObjectStore(Protocol):
    """One bucket: stream objects in, write JSON reports out."""

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        """A read()-able stream of the object from byte `start`; ObjectGoneError if gone/changed."""
        ...

    def etag(self, key: str) -> str:
        """The object's current ETag (without quotes); ObjectGoneError if missing."""
        ...

    def get_json(self, key: str) -> Any | None:
        """The JSON stored under `key`, or None."""
        ...

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as JSON under `key`."""
        ...


class MessageQueue(Protocol):
    """A queue that takes JSON message bodies."""

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue every body (in batches the service allows); raise if any cannot be sent."""
        ...
