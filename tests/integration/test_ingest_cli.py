"""The transfer CLI against moto: import (direct and via the bucket) and export."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from infra.cli.__main__ import main

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600
HEADER = "building,room,sensor_id,timestamp,temperature,unit,humidity,co2\n"


def test_direct_import_then_export_round_trips_the_valid_rows(aws: Aws, tmp_path: Path) -> None:
    # Given a gzip CSV of 1,500 readings (one invalid)
    rows = "".join(f"b1,r1,s1,{T0 + i * 60},{20 + i % 7},C,,\n" for i in range(1500))
    source = tmp_path / "day.csv.gz"
    source.write_bytes(gzip.compress((HEADER + rows + f"b1,r1,s1,{T0},-999,C,,\n").encode()))
    # When it is imported directly and the room exported
    assert main(["import", str(source), "--via", "direct", "--tenant", "acme"]) == 1  # 1 rejected
    out = tmp_path / "out.csv"
    args = ["export", "--tenant", "acme", "--building", "b1", "--room", "r1", "--out", str(out)]
    span = ["--from", "2025-01-01T00:00:00Z", "--to", "2025-01-03T00:00:00Z"]
    assert main([*args, *span]) == 0
    # Then the export holds exactly the valid rows, in time order
    exported = list(csv.DictReader(out.open()))
    assert len(exported) == 1500 == aws.count()
    assert exported[0]["timestamp"] == "2025-01-01T00:00:00.000Z"
    # And another tenant's building of the same name is empty
    other = tmp_path / "other.csv"
    args = ["export", "--tenant", "globex", "--building", "b1", "--room", "r1"]
    assert main([*args, "--out", str(other), *span]) == 0
    assert list(csv.DictReader(other.open())) == []


def test_import_via_bucket_uploads_under_incoming_tenant(aws: Aws, tmp_path: Path) -> None:
    source = tmp_path / "x.ndjson"
    source.write_text(
        json.dumps({"building": "b1", "room": "r1", "timestamp": T0, "co2": 1}) + "\n"
    )
    assert main(["import", str(source), "--tenant", "acme"]) == 0
    (notification,) = aws.receive()
    record = json.loads(notification["Body"])["Records"][0]
    assert unquote_plus(record["s3"]["object"]["key"]) == "incoming/acme/x.ndjson"
