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
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import operations
from infra.streams import StreamPoller, StreamReader, send_failures, streams_client

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
    unpatch: Callable[[], None] = lambda: None

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self) -> Emulator:
        import logging

        from moto.server import ThreadedMotoServer

        from infra.dynamodb_rules import apply
        from infra.emulator import patch_moto

        undo_speed, undo_rules = patch_moto(), apply()

        def unpatch() -> None:
            undo_speed()
            undo_rules()

        self.unpatch = unpatch
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address=LOCALHOST, port=self.port, verbose=False)
        self.server.start()
        wait_until(lambda: port_open(self.port), 15, "the emulator")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.unpatch()


def start_emulator_process(port: int) -> subprocess.Popen[bytes]:
    """moto's server on 127.0.0.1:port in its own process (an in-process mock_aws elsewhere cannot
    reset its data); stop it with stop_process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.emulator", "-H", LOCALHOST, "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return _started(process, lambda: port_open(port), 30, "the emulator")


def _started(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], seconds: float, name: str
) -> subprocess.Popen[bytes]:
    """`process` once `ready()`; stopped, and RuntimeError, if it exits or takes too long."""
    try:
        wait_until(lambda: ready() or process.poll() is not None, seconds, name)
    except RuntimeError:
        stop_process(process)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"{name} exited with {process.returncode}")
    return process


def aws_env(endpoint: str, table_name: str) -> dict[str, str]:
    """The environment the API and CLI need to talk to `endpoint`."""
    env = dict(os.environ)
    for key, value in FAKE_CREDENTIALS.items():
        env.setdefault(key, value)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["ROOMTEMP_TABLE_NAME"] = table_name
    env.setdefault("ROOMTEMP_CURSOR_SECRET_NAME", LOCAL_CURSOR_SECRET)
    env.update(ingest_env())  # issue 4
    return env


def bootstrap(endpoint: str, table_name: str) -> None:
    """Create what the app needs on `endpoint` (idempotent)."""
    from infra.tables import create_table

    create_table(_client("dynamodb", endpoint), table_name)
    create_secret(_client("secretsmanager", endpoint), LOCAL_CURSOR_SECRET)
    # issue 4: the bucket, the ingest queue + DLQ, and the bucket's notification into the queue
    create_ingest_resources(
        _client("s3", endpoint), _client("sqs", endpoint), LOCAL_BUCKET, LOCAL_INGEST_QUEUE
    )


def create_secret(secrets: Any, name: str) -> None:
    """A random secret named `name`, unless it exists (as the template's GenerateSecretString)."""
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        value = secrets.get_random_password(PasswordLength=48, ExcludePunctuation=True)
        secrets.create_secret(Name=name, SecretString=value["RandomPassword"])


def _client(service: str, endpoint: str) -> Any:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    return session.client(service, endpoint_url=endpoint)


def issue_key(endpoint: str, table_name: str, tenant: str, scopes: list[str], name: str) -> str:
    """A fresh key of `tenant` (created if missing) on `endpoint`, by the code POST /keys uses."""
    from chalicelib.aws.dynamo import DynamoTable
    from chalicelib.aws.registry import DynamoKeyRepository, DynamoRegistryRepository
    from chalicelib.domain.access import Scope
    from chalicelib.domain.timeutil import now_ms
    from chalicelib.services import access

    table = DynamoTable(_client("dynamodb", endpoint), table_name)
    registry = DynamoRegistryRepository(table)
    access.ensure_tenant(registry, tenant, now_ms())
    _, token = access.issue_key(
        DynamoKeyRepository(table),
        registry,
        tenant=tenant,
        scopes=[Scope(s) for s in scopes],
        name=name,
        now_ms=now_ms(),
    )
    return token


def start_api(
    port: int, env: dict[str, str], *, quiet: bool = False, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """`chalice local --no-autoreload` (stage local) on 127.0.0.1:port, in its own process group.

    With `log_path`, the server's stdout and stderr are appended to that file.
    """
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
    output: Any = subprocess.DEVNULL if quiet else None
    errors: Any = output
    log_file = None
    if log_path is not None:
        log_file = open(log_path, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        output, errors = log_file, subprocess.STDOUT
    try:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=errors, start_new_session=True
        )
    finally:
        if log_file is not None:
            log_file.close()
    return _started(process, lambda: _health_answers(port), 60, "chalice local")


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


def running_endpoint(emulator_port: int) -> str | None:
    """The endpoint to use if one is up: AWS_ENDPOINT_URL, LocalStack where localstack-client
    finds it (LOCALSTACK_HOST, default localhost:4566), or whatever answers on the emulator port;
    None when nothing does (then the embedded emulator is started)."""
    from localstack_client.config import get_service_endpoint

    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    candidates = [str(get_service_endpoint("dynamodb")), f"http://{LOCALHOST}:{emulator_port}"]
    for candidate in candidates:
        url = urllib.parse.urlsplit(candidate)
        if url.hostname and url.port and port_open(url.port, url.hostname):
            return candidate.replace("localhost", LOCALHOST)
    return None


def is_localstack(endpoint: str) -> bool:
    """Whether `endpoint` is LocalStack (it answers /_localstack/health)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as answer:
            return "services" in json.loads(answer.read())
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def local_stack(
    api_port: int, emulator_port: int, table_name: str = "roomtemp", *, quiet: bool = False
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """Emulator (unless an endpoint is given or answering), table and API; all stopped after."""
    emulator: Emulator | None = None
    endpoint = running_endpoint(emulator_port)
    if endpoint is None:
        endpoint = f"http://{LOCALHOST}:{emulator_port}"
        emulator = Emulator(emulator_port).start()
    process = None
    poller: IngestPoller | None = None
    stream: StreamPoller | None = None
    try:
        env = aws_env(endpoint, table_name)
        os.environ.update({k: env[k] for k in FAKE_CREDENTIALS if k not in os.environ})
        bootstrap(endpoint, table_name)
        process = start_api(api_port, env, quiet=quiet)
        # The handlers `chalice local` never fires, run here as Lambda would run them.
        poller = start_ingest_poller(env)
        stream = start_stream_poller(env)
        yield endpoint, f"http://{LOCALHOST}:{api_port}", process
    finally:
        if stream is not None:
            stream.stop()
        if poller is not None:
            poller.stop()
        if process is not None:
            stop_process(process)
        if emulator is not None:
            emulator.stop()


def local_keys(endpoint: str, table_name: str, tenant: str = "local") -> dict[str, str]:
    """Create `tenant` (if missing) and fresh admin and ingest keys for `make run`."""
    return {
        "admin": issue_key(endpoint, table_name, tenant, ["admin", "read", "ingest"], "make run"),
        "ingest": issue_key(endpoint, table_name, tenant, ["ingest"], "make run device"),
    }


# -- issue 4: bucket, ingest queue + DLQ, and the local poller that feeds the SQS handler ----------
#
# `chalice local` serves routes only and never fires queue handlers. moto's server does deliver
# the bucket's notifications (incoming/ -> the ingest queue), so locally a thread of this process
# long-polls the queue and calls the app's own "ingest" handler with SQS-shaped events, deleting
# only the messages it did not report as failed; failed ones come back after a few seconds and
# after MAX_RECEIVES receives land in the dead-letter queue, as with Lambda.

LOCAL_BUCKET = "roomtemp-data"
LOCAL_INGEST_QUEUE = "roomtemp-ingest"
LOCAL_STREAM_FAILURES = "roomtemp-stream-failures"
LOCAL_CURSOR_SECRET = "roomtemp/local/cursor"
MAX_RECEIVES = 5
VISIBILITY_TIMEOUT_S = 360  # above the handler's local time budget (LOCAL_RUNTIME_MS)
LOCAL_RUNTIME_MS = 300_000
RETRY_AFTER_S = 2  # a failed message is visible again this soon locally


def ingest_env() -> dict[str, str]:
    """The ingest settings of the local stack (the queue URL is looked up by name)."""
    return {"ROOMTEMP_BUCKET_NAME": LOCAL_BUCKET, "ROOMTEMP_INGEST_QUEUE_NAME": LOCAL_INGEST_QUEUE}


def create_ingest_resources(s3: Any, sqs: Any, bucket: str, queue: str) -> tuple[str, str]:
    """Bucket, queue, DLQ (redrive after MAX_RECEIVES) and incoming/ notifications; idempotent."""
    dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
    queue_url = sqs.create_queue(
        QueueName=queue,
        Attributes={
            "RedrivePolicy": json.dumps(redrive),
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "ingest-incoming",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ]
        },
    )
    return str(queue_url), str(dlq_url)


class IngestPoller:
    """Long-polls the ingest queue and feeds its messages to the app's "ingest" handler."""

    def __init__(self, queue_url: str, handler: Any = None, *, wait_seconds: int = 1) -> None:
        import boto3

        self.queue_url = queue_url
        self._handler = handler
        self._wait = wait_seconds
        self._sqs = boto3.session.Session().client("sqs")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0
        self.failed = 0

    @property
    def handler(self) -> Any:
        if self._handler is None:
            from app import app

            self._handler = app.handler_map["ingest"]
        return self._handler

    def poll_once(self) -> int:
        """Receive up to 10 messages, hand them to the handler as one SQS event; return how many."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._wait,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        from chalice.local import LambdaContext

        context = LambdaContext("ingest", memory_size=1024, max_runtime_ms=LOCAL_RUNTIME_MS)
        try:
            response = self.handler(sqs_event(messages, self.queue_url), context)
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            logging.getLogger(__name__).exception("ingest handler failed a whole batch")
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for message in messages:
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=RETRY_AFTER_S,
                )
        self.handled += len(done)
        self.failed += len(failed)
        return len(messages)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logging.getLogger(__name__).exception("ingest poller")
                self._stop.wait(1)

    def start(self) -> IngestPoller:
        self._thread = threading.Thread(target=self._loop, name="ingest-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._wait + 15)
            self._thread = None


def sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    """ReceiveMessage results in the shape of the event Lambda passes to an SQS handler."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{name}",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def start_ingest_poller(env: dict[str, str]) -> IngestPoller:
    """Point this process at the local stack (as the API is) and start the poller thread."""
    from chalicelib import wiring

    keys = ("AWS_ENDPOINT_URL", "ROOMTEMP_TABLE_NAME", *ingest_env().keys())
    os.environ.update({k: env[k] for k in keys if k in env})
    wiring.reset()
    sqs = wiring.aws_client("sqs")
    url = sqs.get_queue_url(QueueName=env["ROOMTEMP_INGEST_QUEUE_NAME"])["QueueUrl"]
    return IngestPoller(url).start()


def start_stream_poller(env: dict[str, str]) -> StreamPoller:
    """The table stream's consumer (the app's "rollups" handler), fed by a poller thread with
    the local stage's batching window; batches that keep failing go to the stream's failure
    queue, as the event source mapping's on-failure destination does in AWS."""
    from chalicelib import wiring

    os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "ROOMTEMP_TABLE_NAME") if k in env})
    wiring.reset()
    sqs = wiring.aws_client("sqs")
    failures = sqs.create_queue(QueueName=LOCAL_STREAM_FAILURES)["QueueUrl"]
    reader = StreamReader(
        wiring.aws_client("dynamodb"), streams_client(), env["ROOMTEMP_TABLE_NAME"]
    )
    local = operations.LOCAL_STREAM
    return StreamPoller(
        reader,
        batch_size=local.batch_size,
        window_s=local.window_s,
        max_attempts=local.retry_attempts + 1,
        failures=send_failures(sqs, failures),
    ).start()


def start_demo(api: str, ingest_key: str, stop: threading.Event) -> threading.Thread:
    """The simulator in a thread: 24 h of history, then live readings until `stop` is set."""
    from infra.cli.simulate import Simulator, http_transport, make_rooms
    from infra.cli.simulate import run as simulate

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
        backend = "LocalStack" if is_localstack(endpoint) else "DynamoDB, S3, SQS; data in memory"
        print(f"  emulator       {endpoint}   ({backend})")
        print("  tenant         local")
        print(f"  admin key      {keys['admin']}   (admin, read, ingest)")
        print(f"  ingest key     {keys['ingest']}   (ingest only)")
        print(f"  dashboard      {api}/   (paste the admin key)")
        print(f"  API docs       {api}/docs   (OpenAPI: {api}/openapi.json)")
        print(f"  ingest         drop files into s3://{LOCAL_BUCKET}/incoming/<tenant>/ ;")
        print(f"                 reports appear under s3://{LOCAL_BUCKET}/reports/")
        stop = threading.Event()
        simulator = start_demo(api, keys["ingest"], stop) if demo else None
        if simulator is not None:
            print("  simulator      2 buildings x 3 rooms: 24 h of history, then every 10 s")
        print(f"\n  curl -H 'Authorization: Bearer {keys['admin']}' {api}/buildings")
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
