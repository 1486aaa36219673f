"""The local stack behind `make run`: the embedded emulator (moto's server), the table, the API.

    python -m infra.local run [--api-port 8000] [--emulator-port 4566] [--demo]
                              [--schedule-every SECONDS]

Beside the API (`chalice local`, routes only) it runs every other handler of app.py as Lambda
would: a poller per SQS handler, the table stream's consumer, the scheduled handlers.
--demo (`make demo`) also runs the simulator: 24 h of history first, then live readings every 10 s,
so the dashboard at http://127.0.0.1:8000/ has data at once; then it asks for a report.

If AWS_ENDPOINT_URL is set, that endpoint is used and no emulator starts. Otherwise, if something
already answers on 127.0.0.1:4566 (LocalStack, or an emulator you started), it is used; else moto's
server is started there, in memory. Ctrl-C or SIGTERM (to this process or to the `make` that
started it) stops everything this process started.
The e2e tests use the same functions on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
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
from datetime import datetime
from pathlib import Path
from typing import Any

from infra import operations
from infra.streams import (
    StreamPoller,
    StreamReader,
    lambda_context,
    send_failures,
    streams_client,
)
from infra.template import load_app

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
    env.update(ingest_env())
    return env


def bootstrap(endpoint: str, table_name: str) -> None:
    """Create what the app needs on `endpoint` (idempotent)."""
    from infra.tables import create_table

    create_table(_client("dynamodb", endpoint), table_name)
    create_secret(_client("secretsmanager", endpoint), LOCAL_CURSOR_SECRET)
    sqs = _client("sqs", endpoint)
    create_ingest_resources(_client("s3", endpoint), sqs, LOCAL_BUCKET, LOCAL_INGEST_QUEUE)
    for _, queue, _ in sqs_handlers(load_app()):
        create_queue(sqs, queue)


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
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=errors,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    finally:
        if log_file is not None:
            log_file.close()
    return _started(process, lambda: _health_answers(port), 60, "chalice local")


def die_with_parent() -> Callable[[], None] | None:
    """What a child runs before exec to get SIGTERM when its parent dies, however it dies
    (prctl PR_SET_PDEATHSIG, Linux); None elsewhere. libc is loaded here, not in the child."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


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
    """The endpoint to use if one is up: AWS_ENDPOINT_URL; else whatever answers on the emulator
    port (LocalStack listens on 4566, make run's default) or, if LOCALSTACK_HOST is set, there
    (read by localstack-client); None when nothing does (then the embedded emulator is started)."""
    from localstack_client.config import get_service_endpoint

    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    candidates = [f"http://{LOCALHOST}:{emulator_port}"]
    if os.environ.get("LOCALSTACK_HOST"):
        candidates.insert(0, str(get_service_endpoint("dynamodb")))
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
    api_port: int,
    emulator_port: int,
    table_name: str = "roomtemp",
    *,
    quiet: bool = False,
    schedule_every_s: float | None = None,
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """Emulator (unless an endpoint is given or answering), table, API and every handler the API
    does not run (start_workers); all stopped after, and this process's environment restored."""
    saved = dict(os.environ)
    emulator: Emulator | None = None
    endpoint = running_endpoint(emulator_port)
    if endpoint is None:
        endpoint = f"http://{LOCALHOST}:{emulator_port}"
        emulator = Emulator(emulator_port).start()
    process = None
    workers: list[Any] = []
    try:
        env = aws_env(endpoint, table_name)
        os.environ.update({k: env[k] for k in FAKE_CREDENTIALS if k not in os.environ})
        bootstrap(endpoint, table_name)
        process = start_api(api_port, env, quiet=quiet)
        workers = start_workers(env, schedule_every_s=schedule_every_s)
        yield endpoint, f"http://{LOCALHOST}:{api_port}", process
    finally:
        stop_workers(workers)
        if process is not None:
            stop_process(process)
        if emulator is not None:
            emulator.stop()
        os.environ.clear()
        os.environ.update(saved)


def local_keys(endpoint: str, table_name: str, tenant: str = "local") -> dict[str, str]:
    """Create `tenant` (if missing) and fresh admin and ingest keys for `make run`."""
    return {
        "admin": issue_key(endpoint, table_name, tenant, ["admin", "read", "ingest"], "make run"),
        "ingest": issue_key(endpoint, table_name, tenant, ["ingest"], "make run device"),
    }


# -- The handlers `chalice local` never fires -----------------------------------------------------
#
# `chalice local` serves routes only. Every other handler app.py declares runs here, in threads of
# this process, as Lambda would run it: each SQS handler long-polls a local queue of its
# decorator's name (with a dead-letter queue after MAX_RECEIVE_COUNT receives) and gets SQS-shaped
# events, only the messages it did not report as failed being deleted; the table stream's consumer
# is fed by infra/streams.py; each scheduled handler is called on its rate. moto's server delivers
# the bucket's notifications (incoming/ -> the ingest queue) itself.

LOCAL_BUCKET = "roomtemp-data"
LOCAL_INGEST_QUEUE = "roomtemp-ingest"
LOCAL_STREAM_FAILURES = "roomtemp-stream-failures"
LOCAL_CURSOR_SECRET = "roomtemp/local/cursor"
LOCAL_RUNTIME_MS = operations.LOCAL_RUNTIME_S * 1000  # a local handler's time per batch
# Above the handler's local time budget, as AWS asks of an event source's queue.
VISIBILITY_TIMEOUT_S = operations.LOCAL_RUNTIME_S + 60


def sqs_handlers(app: Any) -> list[tuple[str, str, int]]:
    """(handler name, queue name, batch size) of every SQS handler of `app`."""
    from chalice.app import SQSEventConfig

    return [
        (source.name, str(source.queue), int(source.batch_size))
        for source in app.event_sources
        if isinstance(source, SQSEventConfig)
    ]


def schedules(app: Any) -> list[tuple[str, float]]:
    """(handler name, period in seconds) of every scheduled handler of `app` (a cron: hourly)."""
    from chalice.app import ScheduledEventConfig

    units = {"minute": 60, "hour": 3600, "day": 86400}
    found: list[tuple[str, float]] = []
    for source in app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        expression = source.schedule_expression
        text = expression if isinstance(expression, str) else expression.to_string()
        match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", text)
        found.append((source.name, int(match.group(1)) * units[match.group(2)] if match else 3600))
    return found


def ingest_env() -> dict[str, str]:
    """The settings that name the local bucket and every queue of the app to its senders."""
    env = {"ROOMTEMP_BUCKET_NAME": LOCAL_BUCKET}
    for _, queue, _ in sqs_handlers(load_app()):
        env[operations.queue_variable(queue)] = queue
    return env


def create_queue(sqs: Any, queue: str) -> tuple[str, str]:
    """A queue with its dead-letter queue (after MAX_RECEIVE_COUNT receives); idempotent."""
    dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(operations.MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(
        QueueName=queue,
        Attributes={
            "RedrivePolicy": json.dumps(redrive),
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
        },
    )["QueueUrl"]
    return str(queue_url), str(dlq_url)


def create_ingest_resources(s3: Any, sqs: Any, bucket: str, queue: str) -> tuple[str, str]:
    """Bucket, ingest queue + DLQ and the bucket's incoming/ notifications; idempotent."""
    queue_url, dlq_url = create_queue(sqs, queue)
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
    return queue_url, dlq_url


class QueuePoller:
    """Long-polls a queue and feeds its messages to one of the app's SQS handlers."""

    def __init__(
        self,
        queue_url: str,
        handler: Any = None,
        *,
        name: str = "ingest",
        wait_seconds: int = 1,
        batch_size: int = 10,
    ) -> None:
        import boto3

        self.queue_url = queue_url
        self.name = name
        self.batch_size = min(batch_size, 10)  # SQS hands out at most 10 a receive
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
            self._handler = load_app().handler_map[self.name]
        return self._handler

    def poll_once(self) -> int:
        """Receive up to the handler's batch size of messages, hand them to the handler as one SQS
        event; return how many."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self._wait,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        context = lambda_context(self.name, LOCAL_RUNTIME_MS)
        try:
            response = self.handler(sqs_event(messages, self.queue_url), context)
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            logging.getLogger(__name__).exception("%s handler failed a whole batch", self.name)
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
                    VisibilityTimeout=operations.LOCAL_RETRY_AFTER_S,
                )
        self.handled += len(done)
        self.failed += len(failed)
        return len(messages)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logging.getLogger(__name__).exception("%s poller", self.name)
                self._stop.wait(1)

    def start(self) -> QueuePoller:
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-poller", daemon=True)
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


class Schedule:
    """Calls one of the app's scheduled handlers every `period_s`, as EventBridge would."""

    def __init__(self, name: str, period_s: float, handler: Any = None) -> None:
        self.name = name
        self.period_s = period_s
        self._handler = handler
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def run_once(self) -> None:
        handler = self._handler or load_app().handler_map[self.name]
        event = {
            "version": "0",
            "id": f"local-{self.name}-{self.runs}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:000000000000:rule/{self.name}"],
            "detail": {},
        }
        handler(event, lambda_context(self.name, LOCAL_RUNTIME_MS))
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.run_once()
            except Exception:
                logging.getLogger(__name__).exception("scheduled handler %s", self.name)

    def start(self) -> Schedule:
        name = f"{self.name}-schedule"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def start_workers(env: dict[str, str], *, schedule_every_s: float | None = None) -> list[Any]:
    """Point this process at the local stack (as the API is) and start, in threads, every handler
    `chalice local` does not run: a poller per SQS handler, the stream consumer, the schedules
    (every `schedule_every_s` if given, else on their own rate)."""
    from chalicelib import wiring

    config = operations.chalice_config()  # the local stage's variables, as `chalice local` sets
    os.environ.update(config["environment_variables"])
    os.environ.update(config["stages"]["local"]["environment_variables"])
    keys = ("AWS_ENDPOINT_URL", "ROOMTEMP_TABLE_NAME", *ingest_env().keys())
    os.environ.update({k: env[k] for k in keys if k in env})
    wiring.reset()
    sqs = wiring.aws_client("sqs")
    app = load_app()
    workers: list[Any] = []
    try:
        for name, queue, batch_size in sqs_handlers(app):
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            workers.append(QueuePoller(url, name=name, batch_size=batch_size).start())
        workers.append(start_stream_poller(env))
        for name, period in schedules(app):
            workers.append(Schedule(name, schedule_every_s or period).start())
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[Any]) -> None:
    """Stop what start_workers started, all at once (each finishes its current batch first), so
    stopping takes as long as the slowest, not as long as all of them."""
    stopping = [threading.Thread(target=worker.stop, daemon=True) for worker in workers]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


def start_stream_poller(env: dict[str, str]) -> StreamPoller:
    """The table stream's consumer (the app's "rollups" handler), fed by a poller thread with
    the local stage's batching window; batches that keep failing go to the stream's failure
    queue, as the event source mapping's on-failure destination does in AWS."""
    from chalicelib import wiring

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


def start_demo(
    api: str, ingest_key: str, stop: threading.Event, admin_key: str | None = None
) -> threading.Thread:
    """The simulator in a thread: 24 h of history, then live readings until `stop` is set. With
    `admin_key`, once the history is in, an alert rule on sim-b1/r101 (2-minute average, 3 °C above
    its current one) and 4 minutes of overheating: the alert fires, then clears."""
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

    def alert_demo() -> None:
        room = f"/buildings/{DEMO_BUILDING}/rooms/r101"
        while not stop.wait(2):  # the history is in once the newest reading is recent
            status, latest = api_call(api, str(admin_key), "GET", room + "/latest")
            if status == 200 and seconds_since(latest["timestamp"]) < 900:
                break
        else:
            return
        _, average = api_call(api, str(admin_key), "GET", room + "/average?minutes=15")
        normal = float(average.get("average") or latest["temperature"])
        threshold, clear = round(normal + 3, 1), round(normal + 1.5, 1)
        rule = {
            "metric": "temperature",
            "condition": "above",
            "threshold": threshold,
            "clear_threshold": clear,
            "minutes": 2,
            "name": "demo: r101 overheats",
        }
        status, created = api_call(api, str(admin_key), "POST", room + "/alerts", rule)
        if status != 201:
            print(f"\n  alert demo failed: POST {room}/alerts answered {status}", flush=True)
            return
        start = int(time.time() * 1000)
        simulator.overheat(DEMO_BUILDING, "r101", start, start + 4 * 60_000, 6.0)
        print(
            f"\n  alert demo     rule {created['id']}: {DEMO_BUILDING}/r101 above {threshold} °C"
            f" (2-min average), clears below {clear};\n                 the room runs 6 °C hot"
            f" for 4 min from now: watch GET {api}/alerts or the dashboard",
            flush=True,
        )
        follow_alert(api, str(admin_key), created["id"], stop)

    thread = threading.Thread(target=work, name="simulator", daemon=True)
    thread.start()
    if admin_key is not None:
        threading.Thread(target=alert_demo, name="alert-demo", daemon=True).start()
    return thread


DEMO_BUILDING = "sim-b1"  # the simulator's first building (infra/cli/simulate.make_rooms)


def follow_alert(api: str, key: str, rule_id: str, stop: threading.Event) -> None:
    """Print the rule's alert when it fires and when it clears (GET /alerts), then return."""
    said: set[str] = set()
    query = f"/alerts?building={DEMO_BUILDING}&room=r101"
    while "cleared" not in said and not stop.wait(5):
        status, page = api_call(api, key, "GET", query)
        for event in page.get("items", []) if status == 200 else []:
            if event.get("rule_id") != rule_id:
                continue
            for state, at in (("fired", "fired_at"), ("cleared", "cleared_at")):
                if event.get(at) and state not in said:
                    said.add(state)
                    value = event.get("value" if state == "fired" else "cleared_value")
                    print(f"\n  alert {state:7}  {event[at]}  (value {value})", flush=True)


def seconds_since(timestamp: str) -> float:
    """How long ago an ISO 8601 timestamp of the API was."""
    return time.time() - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def api_call(api: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request to the local API; (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        api + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def demo_report(api: str, key: str, stop: threading.Event) -> dict[str, Any] | None:
    """Once the simulator's history is in, ask for a report of its first building over the last
    24 h and wait for the reports worker to complete it; the finished report (None if stopped)."""
    while not stop.wait(2):  # the history is in once the newest reading is recent
        status, latest = api_call(api, key, "GET", f"/buildings/{DEMO_BUILDING}/rooms/r101/latest")
        if status == 200 and seconds_since(latest["timestamp"]) < 900:
            break
    else:
        return None
    while not stop.wait(2):  # and folded into the rollups the report reads (their as_of)
        status, stats = api_call(api, key, "GET", f"/buildings/{DEMO_BUILDING}/stats")
        if status == 200 and stats.get("as_of") and seconds_since(stats["as_of"]) < 30:
            break
    to = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
    status, accepted = api_call(
        api, key, "POST", "/reports", {"building": DEMO_BUILDING, "from": since, "to": to}
    )
    if status != 202:
        raise RuntimeError(f"POST /reports answered {status}: {accepted}")
    while not stop.wait(1):
        status, report = api_call(api, key, "GET", f"/reports/{accepted['id']}")
        if report["status"] in ("completed", "failed"):
            return dict(report)
    return None


def start_report_demo(api: str, key: str, stop: threading.Event) -> threading.Thread:
    """demo_report in a thread, printing what it got."""

    def work() -> None:
        try:
            report = demo_report(api, key, stop)
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            print(f"\n  report demo failed: {error}", flush=True)
            return
        if report is None:
            return
        lines = [f"report {report['id']}: {report['status']} in {report['duration_ms']} ms"]
        for metric, stats in ((report.get("summary") or {}).get("building_stats") or {}).items():
            shown = {k: round(v, 2) for k, v in stats.items() if isinstance(v, int | float)}
            lines.append(f"{metric}: " + ", ".join(f"{k} {v}" for k, v in list(shown.items())[:4]))
        lines.append(f"GET {api}/reports/{report['id']}   (CSV: its csv_url)")
        print("\n  " + "\n    ".join(lines), flush=True)

    thread = threading.Thread(target=work, name="report-demo", daemon=True)
    thread.start()
    return thread


def wait_for(process: subprocess.Popen[bytes]) -> None:
    """Wait for `process` to exit, in short waits: a signal the kernel hands to another thread of
    this process (any thread may take it) runs its handler here within a second, where one long
    wait would never return to Python to run it."""
    while True:
        try:
            process.wait(timeout=1)
            return
        except subprocess.TimeoutExpired:
            continue


def exit_with_parent() -> None:
    """SIGTERM this process when its parent (make) goes, so a stopped `make run` stops it all."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run(
    api_port: int, emulator_port: int, demo: bool = False, schedule_every_s: float | None = None
) -> None:
    """`make run`: start everything, print the URLs and keys, wait for Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops it even if started with SIGINT ignored (as background jobs and some runners do).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with_parent()
    stack = local_stack(api_port, emulator_port, schedule_every_s=schedule_every_s)
    try:
        with stack as (endpoint, api, process):
            keys = local_keys(endpoint, os.environ.get("ROOMTEMP_TABLE_NAME", "roomtemp"))
            print_banner(endpoint, api, keys)
            stop = threading.Event()
            threads = []
            if demo:
                threads.append(start_demo(api, keys["ingest"], stop, admin_key=keys["admin"]))
                threads.append(start_report_demo(api, keys["admin"], stop))
                print("  simulator      2 buildings x 3 rooms: 24 h of history, then every 10 s;")
                print(f"                 then a report of {DEMO_BUILDING} over the last 24 h")
            print(f"\n  curl -H 'Authorization: Bearer {keys['admin']}' {api}/buildings")
            print("  Ctrl-C stops everything.\n", flush=True)
            try:
                with contextlib.suppress(KeyboardInterrupt):
                    wait_for(process)
            finally:
                # A second signal (or make going away) must not cut the stopping short: a step
                # skipped would leave the emulator's thread, or the API, behind.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                print("\n  stopping the simulator, the workers, the API, the emulator", flush=True)
                stop.set()
                for thread in threads:
                    thread.join(timeout=10)
    finally:  # also when SIGTERM ends it (SystemExit)
        print("  stopped", flush=True)


def print_banner(endpoint: str, api: str, keys: dict[str, str]) -> None:
    """What make run prints once everything is up: where things are, the keys, the workers."""
    backend = "LocalStack" if is_localstack(endpoint) else "DynamoDB, S3, SQS; data in memory"
    print(f"\n  roomtemp API   {api}   (try {api}/health)")
    print(f"  emulator       {endpoint}   ({backend})")
    print("  tenant         local")
    print(f"  admin key      {keys['admin']}   (admin, read, ingest)")
    print(f"  ingest key     {keys['ingest']}   (ingest only)")
    print(f"  dashboard      {api}/   (paste the admin key)")
    print(f"  API docs       {api}/docs   (OpenAPI: {api}/openapi.json)")
    print(f"  ingest         drop files into s3://{LOCAL_BUCKET}/incoming/<tenant>/")
    print("  workers        " + ", ".join(worker_names()) + " (as in AWS)")


def worker_names() -> list[str]:
    """The handlers make run drives beside the API, by kind."""
    app = load_app()
    return (
        [f"{name} (queue {queue})" for name, queue, _ in sqs_handlers(app)]
        + ["rollups (table stream)"]
        + [f"{name} (every {period:.0f} s)" for name, period in schedules(app)]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="emulator + table + API")
    run_parser.add_argument("--api-port", type=int, default=8000)
    run_parser.add_argument("--emulator-port", type=int, default=4566)
    run_parser.add_argument("--demo", action="store_true", help="also run the simulator")
    run_parser.add_argument(
        "--schedule-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run the scheduled handlers this often (default: their own rate)",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.api_port, args.emulator_port, demo=args.demo, schedule_every_s=args.schedule_every)


if __name__ == "__main__":
    main()
