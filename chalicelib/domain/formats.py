"""File formats of bulk ingestion: CSV with a header and NDJSON, optionally gzip, read line by line.

Nothing here holds more than one line (plus a read buffer) in memory, whatever the file size.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.domain.inputs import load_json

CSV_COLUMNS = (
    "building",
    "room",
    "sensor_id",
    "timestamp",
    "temperature",
    "unit",
    "humidity",
    "co2",
)
REQUIRED_COLUMNS = ("building", "room", "timestamp")
METRIC_COLUMNS = ("temperature", "humidity", "co2")
MAX_LINE_BYTES = 64 * 1024
READ_BUFFER = 1024 * 1024
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class FileFormatError(Exception):
    """The file as a whole cannot be read (unknown format, bad header, broken gzip)."""


class Format(StrEnum):
    """How rows are written in a file."""

    CSV = "csv"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class FileKind:
    """A file's row format and whether it is gzip-compressed."""

    format: Format
    gzip: bool


def file_kind(name: str) -> FileKind:
    """The kind of file a name (key or path) says it is: .csv, .ndjson/.jsonl, either + .gz."""
    lower = name.lower()
    compressed = lower.endswith(".gz")
    if compressed:
        lower = lower[:-3]
    if lower.endswith(".csv"):
        return FileKind(Format.CSV, compressed)
    if lower.endswith((".ndjson", ".jsonl")):
        return FileKind(Format.NDJSON, compressed)
    raise FileFormatError("file name must end in .csv, .ndjson or .jsonl (optionally + .gz)")


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a file: its 1-based number, its bytes, and the offset just after it."""

    number: int
    data: bytes
    end: int
    too_long: bool = False


class _Raw(io.RawIOBase):
    """A read()-only stream (e.g. botocore's StreamingBody) as a raw stream io can buffer."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def iter_lines(
    source: Any, *, compressed: bool, offset: int = 0, line: int = 1, skip: int = 0
) -> Iterator[Line]:
    """Lines of `source` (positioned at byte `offset` of the file, numbered from `line`).

    For gzip files offsets count uncompressed bytes and `source` starts at the file's beginning;
    `skip` uncompressed bytes are read past first (a gzip stream cannot be entered in the middle).
    """
    stream: Any = io.BufferedReader(_Raw(source), READ_BUFFER)
    if compressed:
        stream = io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), READ_BUFFER)
    try:
        while skip > 0:
            skipped = len(stream.read(min(skip, READ_BUFFER)))
            if not skipped:
                return
            skip -= skipped
        position, number = offset, line
        while True:
            data = stream.readline(MAX_LINE_BYTES)
            if not data:
                return
            position += len(data)
            too_long = False
            while not data.endswith(b"\n"):  # an overlong line: read past its rest, keep none
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest:
                    break
                position += len(rest)
                data, too_long = b"", True
                if rest.endswith(b"\n"):
                    break
            yield Line(number, data, position, too_long)
            number += 1
    except (OSError, EOFError, zlib.error) as exc:
        raise FileFormatError(f"not a readable gzip file: {exc}") from None


class RowError(Exception):
    """A line that is not a row at all (bad JSON, wrong number of CSV fields, not UTF-8)."""


def decode(line: Line) -> str:
    """The line as text without its line ending; RowError if it is not UTF-8 or too long."""
    if line.too_long:
        raise RowError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        return line.data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise RowError("line is not UTF-8") from None


def parse_header(text: str) -> tuple[str, ...]:
    """The columns of a CSV header; FileFormatError if it is not a readings header."""
    columns = tuple(c.strip().lower() for c in _split_csv(text.lstrip("\ufeff")))
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        raise FileFormatError(f"header: unknown column(s) {', '.join(unknown)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FileFormatError(f"header: missing column(s) {', '.join(missing)}")
    if not any(c in columns for c in METRIC_COLUMNS):
        raise FileFormatError("header: needs at least one of temperature, humidity, co2")
    if len(set(columns)) != len(columns):
        raise FileFormatError("header: a column appears twice")
    return columns


def _split_csv(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]))


def _number(text: str) -> Any:
    # Anything that does not parse stays text: validation rejects the row (alone) with the
    # message the API gives. A number of thousands of digits is such a thing (int() refuses it).
    try:
        if _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text):
            return float(text)
    except ValueError:
        pass
    return text


def csv_row(columns: tuple[str, ...], text: str) -> dict[str, Any]:
    """A CSV line as a reading object: empty fields are absent, numbers are numbers."""
    fields = _split_csv(text)
    if len(fields) != len(columns):
        raise RowError(f"expected {len(columns)} fields, got {len(fields)}")
    row: dict[str, Any] = {}
    for column, raw in zip(columns, fields, strict=True):
        value = raw.strip()
        if not value:
            continue
        if column in METRIC_COLUMNS:
            row[column] = _number(value)
        elif column == "timestamp":
            row[column] = _number(value) if value[0].isdigit() and "-" not in value else value
        else:
            row[column] = value
    return row


def ndjson_row(text: str) -> Any:
    """An NDJSON line as the JSON value it holds."""
    try:
        return load_json(text)
    except ValueError as exc:
        raise RowError(f"not valid JSON: {exc}") from None
