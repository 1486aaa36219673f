"""File formats: names, CSV headers and rows, NDJSON rows, lines with offsets (also gzip)."""

from __future__ import annotations

import gzip
import io

import pytest

from chalicelib.domain import formats


def test_file_kind_is_told_by_the_name() -> None:
    assert formats.file_kind("incoming/t/a.csv") == formats.FileKind(formats.Format.CSV, False)
    assert formats.file_kind("a.NDJSON.gz") == formats.FileKind(formats.Format.NDJSON, True)
    assert formats.file_kind("a.jsonl") == formats.FileKind(formats.Format.NDJSON, False)
    with pytest.raises(formats.FileFormatError):
        formats.file_kind("a.xlsx")


def test_header_needs_the_required_columns_and_a_metric() -> None:
    assert formats.parse_header("building,room,timestamp,co2") == (
        "building",
        "room",
        "timestamp",
        "co2",
    )
    with pytest.raises(formats.FileFormatError, match="missing column"):
        formats.parse_header("building,timestamp,co2")
    with pytest.raises(formats.FileFormatError, match="at least one"):
        formats.parse_header("building,room,timestamp")
    with pytest.raises(formats.FileFormatError, match="unknown column"):
        formats.parse_header("building,room,timestamp,co2,colour")


def test_csv_row_leaves_empty_fields_out_and_reads_numbers() -> None:
    columns = formats.parse_header("building,room,sensor_id,timestamp,temperature,humidity")
    row = formats.csv_row(columns, "b1,r1,,1795601700,21.5,")
    assert row == {"building": "b1", "room": "r1", "timestamp": 1795601700, "temperature": 21.5}
    iso = formats.csv_row(columns, 'b1,r1,s1,2026-11-25T10:15:00Z,"warm",40')
    assert iso["timestamp"] == "2026-11-25T10:15:00Z"
    assert iso["temperature"] == "warm"  # left as text: validation rejects it
    with pytest.raises(formats.RowError, match="expected 6 fields"):
        formats.csv_row(columns, "b1,r1")


def test_ndjson_row_rejects_broken_json() -> None:
    assert formats.ndjson_row('{"a": 1}') == {"a": 1}
    with pytest.raises(formats.RowError, match="not valid JSON"):
        formats.ndjson_row("{nope")


def test_lines_resume_at_an_offset_exactly_where_they_stopped() -> None:
    data = b"h\r\nline two\n\nlast line without newline"
    every = list(formats.iter_lines(io.BytesIO(data), compressed=False))
    assert [line.number for line in every] == [1, 2, 3, 4]
    assert every[-1].end == len(data)
    second = every[1]
    resumed = list(
        formats.iter_lines(
            io.BytesIO(data[second.end :]), compressed=False, offset=second.end, line=3
        )
    )
    assert resumed == every[2:]


def test_gzip_lines_resume_by_skipping_uncompressed_bytes() -> None:
    text = b"".join(b"row %d\n" % i for i in range(1000))
    packed = gzip.compress(text)
    every = list(formats.iter_lines(io.BytesIO(packed), compressed=True))
    assert len(every) == 1000
    middle = every[499]
    resumed = list(
        formats.iter_lines(
            io.BytesIO(packed), compressed=True, offset=middle.end, line=501, skip=middle.end
        )
    )
    assert resumed == every[500:]


def test_broken_gzip_is_a_file_error() -> None:
    with pytest.raises(formats.FileFormatError, match="gzip"):
        list(formats.iter_lines(io.BytesIO(b"not gzip at all\n"), compressed=True))


def test_overlong_line_is_marked_and_skipped_without_losing_the_next() -> None:
    data = b"x" * (formats.MAX_LINE_BYTES * 2 + 10) + b"\nnext\n"
    first, second = formats.iter_lines(io.BytesIO(data), compressed=False)
    assert first.too_long
    with pytest.raises(formats.RowError, match="longer than"):
        formats.decode(first)
    assert formats.decode(second) == "next"
    assert second.end == len(data)
