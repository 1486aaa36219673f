"""`import FILE` (to the bucket or straight into the table) and `export` (a room's readings)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any

from chalicelib.domain import formats, imports
from chalicelib.domain.models import MAX_PAGE, Position
from chalicelib.domain.timeutil import parse_iso
from chalicelib.services import imports as files

EXPORT_COLUMNS = formats.CSV_COLUMNS


def register(subparsers: Any) -> None:
    """Add `import` and `export` to the CLI."""
    imp = subparsers.add_parser("import", help="ingest a CSV/NDJSON file (optionally .gz)")
    imp.add_argument("file")
    imp.add_argument("--via", choices=("bucket", "direct"), default="bucket")
    imp.add_argument("--tenant", default="local")
    imp.add_argument("--key", help="object key (default incoming/<tenant>/<file name>)")
    imp.set_defaults(func=run_import)

    exp = subparsers.add_parser("export", help="a room's readings of a time range")
    exp.add_argument("--tenant", default="local", help="whose building (direct table reads)")
    exp.add_argument("--building", required=True)
    exp.add_argument("--room", required=True)
    exp.add_argument("--from", dest="from_", required=True, help="ISO 8601 with offset")
    exp.add_argument("--to", required=True, help="ISO 8601 with offset")
    exp.add_argument("--format", choices=("csv", "ndjson"), default="csv")
    exp.add_argument("--out", help="file to write (default: stdout)")
    exp.add_argument("--url", help="API base URL; without it, read the table directly")
    exp.add_argument("--key", help="API key (sent as x-api-key)")
    exp.set_defaults(func=run_export)


def _progress(**kwargs: Any) -> Any:
    # The CLI's only extra dependency; Lambda never imports this module.
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(file=sys.stderr, **kwargs)


def run_import(args: argparse.Namespace) -> int:
    """Upload the file under incoming/<tenant>/ (the queue does the rest), or ingest it here."""
    path = Path(args.file)
    formats.file_kind(path.name)  # fail early on a name the ingester would refuse
    key = args.key or f"{imports.INCOMING}{args.tenant}/{path.name}"
    size = path.stat().st_size
    if args.via == "bucket":
        from chalicelib import wiring

        store = wiring.object_store()
        with _progress(total=size, unit="B", unit_scale=True, desc="upload") as bar:
            store.upload(str(path), key, progress=bar.update)  # type: ignore[attr-defined]
        print(
            f"uploaded {path} to {key}; its status will be {imports.status_key(key)}",
            file=sys.stderr,
        )
        return 0
    report = import_direct(path, key)
    print(json.dumps(report.to_json() | {"rejected_rows": report.rejected_rows[:20]}, indent=1))
    return 0 if report.status == "done" and not report.rejected else 1  # scripts notice rejects


class _LocalFile:
    """The local file in the role of the bucket, so a direct import runs the same file code."""

    def __init__(self, path: Path, key: str, bar: Any) -> None:
        self._path, self._key, self._bar = path, key, bar
        self.reports: dict[str, Any] = {}

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        handle = self._path.open("rb")
        handle.seek(start)
        bar = self._bar

        class Counting(io.RawIOBase):
            def read(self, amount: int = -1) -> bytes:
                data = handle.read(amount)
                bar.update(len(data))
                return data

        return Counting()

    def etag(self, key: str) -> str:
        return "local"

    def get_json(self, key: str) -> Any | None:
        return self.reports.get(key)

    def put_json(self, key: str, value: Any) -> None:
        self.reports[key] = value


def import_direct(path: Path, key: str) -> imports.ImportStatus:
    """Ingest a local file into the table through the same file code and pipeline."""
    from chalicelib import wiring

    with _progress(total=path.stat().st_size, unit="B", unit_scale=True, desc="import") as bar:
        return files.process_segment(
            imports.Segment(key=key, etag="local"),
            objects=_LocalFile(path, key, bar),
            queue=_NoContinuations(),
            store=wiring.writer(),
            budget=files.Budget(),
        )


class _NoContinuations:
    """A direct import has no time limit, so it never hands the rest of a file on."""

    def send(self, bodies: Any) -> None:
        raise AssertionError("a direct import never queues a continuation")

    def ping(self) -> None:
        """Nothing to reach."""


def run_export(args: argparse.Namespace) -> int:
    """Write the room's readings in [from, to) as CSV or NDJSON, page by page."""
    from_ms, to_ms = parse_iso(args.from_, "from"), parse_iso(args.to, "to")
    if args.url:
        pages = _api_pages(args.url, args.key, args.building, args.room, args.from_, args.to)
    else:
        pages = _table_pages(args.tenant, args.building, args.room, from_ms, to_ms)
    count = 0
    target = open(args.out, "w", newline="") if args.out else nullcontext(sys.stdout)  # noqa: SIM115
    with target as out, _progress(unit=" readings", desc="export") as bar:
        writer = _writer(out, args.format)
        for page in pages:
            for item in page:
                writer(item)
            count += len(page)
            bar.update(len(page))
    print(f"exported {count} readings", file=sys.stderr)
    return 0


def _writer(out: IO[str], fmt: str) -> Any:
    if fmt == "ndjson":
        return lambda item: out.write(json.dumps(item) + "\n")
    rows = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    rows.writeheader()
    return rows.writerow


def _table_pages(
    tenant: str, building: str, room: str, from_ms: int, to_ms: int
) -> Iterator[list[Any]]:
    from chalicelib import wiring
    from chalicelib.api.responses import ReadingOut
    from chalicelib.services import readings as services

    after: Position | None = None
    while True:
        page = services.list_readings(
            wiring.repositories().readings,
            tenant,
            building,
            room,
            from_ms=from_ms,
            to_ms=to_ms,
            limit=MAX_PAGE,
            after=after,
        )
        yield [ReadingOut.of(r).model_dump(mode="json") for r in page.items]
        if page.next_after is None:
            return
        after = page.next_after


def _api_pages(
    url: str, key: str | None, building: str, room: str, start: str, end: str
) -> Iterator[list[Any]]:
    path = f"{url.rstrip('/')}/buildings/{building}/rooms/{room}/readings"
    params = {"from": start, "to": end, "limit": "1000"}
    headers = {"Accept": "application/json"}
    if key or os.environ.get("ROOMTEMP_API_KEY"):
        headers["x-api-key"] = key or os.environ["ROOMTEMP_API_KEY"]
    while True:
        request = urllib.request.Request(
            f"{path}?{urllib.parse.urlencode(params)}", headers=headers
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        yield list(body["items"])
        if not body.get("next_cursor"):
            return
        params = {"cursor": body["next_cursor"], "limit": "1000"}
