"""The local stack behind `make run`: the embedded emulator (moto's server), the table, the API.

    python -m infra.local run [--api-port 8000] [--emulator-port 4566] [--demo]

--demo (`make demo`) also runs the simulator: 24 h of history first, then live readings every 10 s,
so the dashboard at http://127.0.0.1:8000/ has data at once.

If AWS_ENDPOINT_URL is set, that endpoint is used and no emulator starts. Otherwise, if something
already answers on 127.0.0.1:4566 (LocalStack, or an emulator you started), it is used; else moto's
server is started there, in memory. Ctrl-C stops everything this process started.
The e2e tests use the same functions on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCALHOST = "127.0.0.1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOCALHOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Any, timeout: float, what: str) -> None:
    """Poll `check()` until it is true, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


@dataclass
class Emulator:
    """moto's server, in this process, on 127.0.0.1:port."""

    port: int
    server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self) -> Emulator:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address=LOCALHOST, port=self.port, verbose=False)
        self.server.start()
        wait_until(lambda: port_open(self.port), 15, "the emulator")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def aws_env(endpoint: str, table_name: str) -> dict[str, str]:
    """The environment the API and CLI need to talk to `endpoint`."""
    env = dict(os.environ)
    for key, value in FAKE_CREDENTIALS.items():
        env.setdefault(key, value)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["ROOMTEMP_TABLE_NAME"] = table_name
    return env


def bootstrap(endpoint: str, table_name: str) -> None:
    """Create what the app needs on `endpoint` (idempotent)."""
    import boto3

    from infra.tables import create_table

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    create_table(session.client("dynamodb", endpoint_url=endpoint), table_name)


def start_api(port: int, env: dict[str, str], *, quiet: bool = False) -> subprocess.Popen[bytes]:
    """`chalice local --no-autoreload` (stage local) on 127.0.0.1:port, in its own process group."""
    chalice = Path(sys.executable).with_name("chalice")
    command = [
        str(chalice),
        "local",
        "--no-autoreload",
        "--stage",
        "local",
        "--host",
        LOCALHOST,
        "--port",
        str(port),
    ]
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True
    )
    try:
        wait_until(lambda: _health_answers(port) or process.poll() is not None, 60, "the API")
    except RuntimeError:
        stop_process(process)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"chalice local exited with {process.returncode}")
    return process


def _health_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOCALHOST}:{port}/health", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, even if the table is not there
    except OSError:
        return False


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started by start_api, and its children."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def local_stack(
    api_port: int, emulator_port: int, table_name: str = "roomtemp", *, quiet: bool = False
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """Emulator (unless an endpoint is given or answering), table and API; all stopped after."""
    emulator: Emulator | None = None
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        endpoint = f"http://{LOCALHOST}:{emulator_port}"
        if not port_open(emulator_port):
            emulator = Emulator(emulator_port).start()
    process = None
    try:
        env = aws_env(endpoint, table_name)
        os.environ.update({k: env[k] for k in FAKE_CREDENTIALS if k not in os.environ})
        bootstrap(endpoint, table_name)
        process = start_api(api_port, env, quiet=quiet)
        yield endpoint, f"http://{LOCALHOST}:{api_port}", process
    finally:
        if process is not None:
            stop_process(process)
        if emulator is not None:
            emulator.stop()


def local_keys(endpoint: str, table_name: str, tenant: str = "local") -> dict[str, str]:
    """Create `tenant` (if missing) and fresh admin and ingest keys, through the CLI code."""
    os.environ.update(aws_env(endpoint, table_name))
    from chalicelib import wiring
    from chalicelib.cli.keys import bootstrap_key
    from chalicelib.domain.registry import Scope

    wiring.reset()
    admin = bootstrap_key(tenant, [Scope.ADMIN, Scope.READ, Scope.INGEST], "make run admin")
    ingest = bootstrap_key(tenant, [Scope.INGEST], "make run device")
    return {"admin": admin["key"], "ingest": ingest["key"]}


def start_demo(api: str, ingest_key: str, stop: threading.Event) -> threading.Thread:
    """The simulator in a thread: 24 h of history, then live readings until `stop` is set."""
    from chalicelib.cli.simulate import Simulator, http_transport, make_rooms
    from chalicelib.cli.simulate import run as simulate

    simulator = Simulator(
        make_rooms(2, 3, 1, seed=2026), http_transport(api, ingest_key), seed=2026
    )

    def work() -> None:
        summary = simulate(
            simulator,
            rate_s=10,
            duration_s=0,
            backfill_hours=24,
            backfill_step_s=300,
            sleep=stop.wait,
            should_stop=stop.is_set,
        )
        print("\n  simulator\n" + textwrap.indent(summary.text(), "    "), flush=True)

    thread = threading.Thread(target=work, name="simulator", daemon=True)
    thread.start()
    return thread


def run(api_port: int, emulator_port: int, demo: bool = False) -> None:
    """`make run`: start everything, print the URLs and keys, wait for Ctrl-C."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with local_stack(api_port, emulator_port) as (endpoint, api, process):
        keys = local_keys(endpoint, os.environ.get("ROOMTEMP_TABLE_NAME", "roomtemp"))
        print(f"\n  roomtemp API   {api}   (try {api}/health)")
        print(f"  emulator       {endpoint}   (DynamoDB; data kept in memory)")
        print("  tenant         local")
        print(f"  admin key      {keys['admin']}   (admin, read, ingest)")
        print(f"  ingest key     {keys['ingest']}   (ingest only)")
        print(f"  dashboard      {api}/   (paste the admin key)")
        print(f"  API docs       {api}/docs   (OpenAPI: {api}/openapi.json)")
        print(f"\n  curl -H 'Authorization: Bearer {keys['admin']}' {api}/buildings")
        stop = threading.Event()
        simulator = start_demo(api, keys["ingest"], stop) if demo else None
        if simulator is not None:
            print("  simulator      2 buildings x 3 rooms: 24 h of history, then every 10 s")
        print("  Ctrl-C stops everything.\n", flush=True)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                process.wait()
        finally:
            stop.set()
            if simulator is not None:
                simulator.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="emulator + table + API")
    run_parser.add_argument("--api-port", type=int, default=8000)
    run_parser.add_argument("--emulator-port", type=int, default=4566)
    run_parser.add_argument("--demo", action="store_true", help="also run the simulator")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.api_port, args.emulator_port, demo=args.demo)


if __name__ == "__main__":
    main()
