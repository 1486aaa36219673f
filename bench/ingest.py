"""Benchmark of bulk ingestion (issue 4): a CSV through the whole pipeline vs raw BatchWriteItem.

    python -m bench.ingest    # rows: ROOMTEMP_BENCH_INGEST_ROWS (default 1,000,000, ~30 min)

moto's server runs in this process on a free port (real HTTP). Each measured run is a separate
child process, so its peak RSS (VmHWM) is the import's own, not the emulator's:
- import: the CSV is uploaded to the emulator's bucket and ingested by `files.process_segment`
  (S3 streaming, parsing, validation, rooms resolved, readings written once each with PartiQL
  INSERTs, 25 a call, under the retry policy), no budget. Since issue 16 the import writes
  readings only: their rollups follow from the table's stream (not consumed here);
- raw: the same reading items (aws/items.reading_item) written with BatchWriteItem (25 per
  call, as many calls in flight as the import keeps) and nothing else: no validation, no reads,
  no conditions;
- insert: the same reading items written as the import writes them (DynamoTable.insert_new:
  PartiQL INSERTs, 25 a call, with a write token) and nothing else: the emulator's price of
  conditional writes, apart from the pipeline's;
- import at a tenth of the rows, to show that peak memory does not grow with the file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROOMS = 100
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
HEADER = "building,room,sensor_id,timestamp,temperature,unit,humidity,co2\n"
LAMBDA_SECONDS = 900 - 60  # the ingest function's timeout minus the reserve kept for hand-off


def write_csv(path: Path, rows: int) -> int:
    """100 rooms x rows/100 readings a minute apart; return the file size in bytes."""
    per_room = rows // ROOMS
    with path.open("w") as out:
        out.write(HEADER)
        for i in range(per_room):
            ts = T0 + i * 60
            out.writelines(
                f"b1,room-{r:03d},s1,{ts},{20 + (i + r) % 70 / 10:.1f},C,{40 + r % 20},\n"
                for r in range(ROOMS)
            )
    return path.stat().st_size


def _child(mode: str, endpoint: str, table: str, path: str) -> dict[str, float]:
    """One measured run (in a child process): 'import', 'raw' or 'insert'."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["ROOMTEMP_TABLE_NAME"] = table
    from chalicelib import wiring
    from chalicelib.domain import imports
    from chalicelib.domain.timeutil import now_ms
    from chalicelib.services import access
    from chalicelib.services import imports as files
    from chalicelib.services.ingest import Writer
    from tests.fakes import InMemoryQueue

    wiring.reset()
    client = wiring.aws_client("dynamodb")
    started = time.perf_counter()
    written = 0
    if mode == "import":
        objects = wiring.object_store()
        key = f"incoming/bench/{Path(path).name}"
        etag = objects.etag(key)
        repos, known = wiring.repositories(), wiring.known_rooms()
        access.ensure_tenant(repos.registry, "bench", now_ms())
        report = files.process_segment(
            imports.Segment(key=key, etag=etag),
            objects=objects,
            queue=InMemoryQueue(),
            store=Writer(repos, known=known),
            budget=files.Budget(),
        )
        assert report.status == "done", report.error
        count = report.stored
    else:
        count, written = _raw(client, table, path, insert=mode == "insert")
    elapsed = time.perf_counter() - started
    peak_mb = _peak_rss_mb()
    return {"rows": count, "items": written, "seconds": elapsed, "peak_rss_mb": peak_mb}


def _raw(client: Any, table: str, path: str, *, insert: bool) -> tuple[int, int]:
    """BatchWriteItem (or, `insert`, the import's PartiQL INSERTs) only: the reading items, an
    hour of the file at a time; no validation, no reads. Return (rows, items written)."""
    from chalicelib.aws import keys
    from chalicelib.aws.dynamo import DynamoTable
    from chalicelib.aws.items import reading_item
    from chalicelib.aws.readings import DynamoReadingRepository
    from chalicelib.domain.models import Reading
    from chalicelib.domain.rollups import HOUR_MS, floor_to
    from chalicelib.settings import get_settings

    # As many requests in flight as the pipeline's writer keeps.
    dynamo = DynamoTable(client, table, concurrency=get_settings().write_concurrency)
    repo = DynamoReadingRepository(dynamo)
    rows = written = 0

    def write(group: list[Reading]) -> int:
        items = [reading_item(r) for r in group]
        if insert:
            token = {keys.WRITE_TOKEN: {"S": f"raw{rows}"}}
            dynamo.insert_new([{**i, **token} for i in items], token=keys.WRITE_TOKEN)
        else:
            repo.batch_write(items)  # 25 per call, UnprocessedItems retried
        return len(group)

    with open(path) as source:
        next(source)
        hour: list[Reading] = []
        for line in source:
            building, room, sensor, ts, temperature, _, humidity, _ = line.split(",")
            reading = Reading(
                building,
                room,
                sensor,
                int(ts) * 1000,
                float(temperature),
                float(humidity),
                tenant="bench",
            )
            if hour and floor_to(reading.ts_ms, HOUR_MS) != floor_to(hour[0].ts_ms, HOUR_MS):
                written += write(hour)
                hour = []
            hour.append(reading)
            rows += 1
        written += write(hour)
    return rows, written


def _peak_rss_mb() -> float:
    # VmHWM is this process's own peak; ru_maxrss would include the emulator's pages at fork time.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(mode: str, endpoint: str, table: str, path: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    output = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--child", mode, endpoint, table, str(path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def run() -> dict[str, float]:
    """Measure import vs raw BatchWriteItem on the emulator; return the figures."""
    import boto3

    from infra.local import FAKE_CREDENTIALS, Emulator, create_ingest_resources, free_port
    from infra.tables import create_table

    rows = int(os.environ.get("ROOMTEMP_BENCH_INGEST_ROWS", "1000000"))
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    emulator = Emulator(free_port()).start()
    try:
        endpoint = emulator.endpoint
        os.environ["ROOMTEMP_BUCKET_NAME"] = "bench-data"
        session = boto3.session.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint)
        sqs = session.client("sqs", endpoint_url=endpoint)
        create_ingest_resources(s3, sqs, "bench-data", "bench-ingest")
        for table in ("bench-import", "bench-raw", "bench-insert", "bench-small"):
            create_table(dynamodb, table)
        with tempfile.TemporaryDirectory() as tmp:
            big, small = Path(tmp, "big.csv"), Path(tmp, "small.csv")
            size = write_csv(big, rows)
            write_csv(small, rows // 10)
            for path in (big, small):
                s3.upload_file(str(path), "bench-data", f"incoming/bench/{path.name}")
            raw = _measure("raw", endpoint, "bench-raw", big)
            dynamodb.delete_table(TableName="bench-raw")  # frees the emulator's memory
            inserted = _measure("insert", endpoint, "bench-insert", big)
            dynamodb.delete_table(TableName="bench-insert")
            imported = _measure("import", endpoint, "bench-import", big)
            tenth = _measure("import", endpoint, "bench-small", small)
    finally:
        emulator.stop()
    import_rate = imported["rows"] / imported["seconds"]
    raw_rate = raw["rows"] / raw["seconds"]
    rows_per_invocation = import_rate * LAMBDA_SECONDS
    return {
        "import_rows": float(imported["rows"]),
        "import_readings_per_s": round(import_rate, 1),
        "raw_batchwrite_readings_per_s": round(raw_rate, 1),
        "import_vs_raw_ratio": round(import_rate / raw_rate, 3),
        "raw_insert_readings_per_s": round(inserted["rows"] / inserted["seconds"], 1),
        "import_vs_raw_insert_ratio": round(
            import_rate / (inserted["rows"] / inserted["seconds"]), 3
        ),
        "import_peak_rss_mb": round(imported["peak_rss_mb"], 1),
        "import_peak_rss_mb_tenth_rows": round(tenth["peak_rss_mb"], 1),
        "import_file_bytes_per_row": round(size / rows, 1),
        "lambda_rows_per_invocation_at_import_rate": round(rows_per_invocation),
        "lambda_csv_mb_per_invocation_at_import_rate": round(
            rows_per_invocation * size / rows / 1e6, 1
        ),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(*argv[1:5])))
        return
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
