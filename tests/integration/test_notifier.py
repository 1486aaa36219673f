"""The notifier adapter against a real HTTP(S) receiver on 127.0.0.1 and SNS on moto."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib import wiring
from chalicelib.aws.notify import USER_AGENT, HttpSnsNotifier
from chalicelib.domain.notify import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    DeliveryError,
    SnsTarget,
    WebhookTarget,
    verify,
)

SECRET = "whsec-test"
BODY = json.dumps({"event": "alert.fired", "room": "r1", "value": 31.5}).encode()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: answers from `script` (status, extra headers, stall) in order, then
    200; records every request."""

    url: str
    port: int
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bool]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(
        self, status: int, headers: dict[str, str] | None = None, *, stall: bool = False
    ) -> None:
        self.script.append((status, headers or {}, stall))


@contextlib.contextmanager
def serving(
    server: http.server.ThreadingHTTPServer, receiver_box: list[Receiver]
) -> Iterator[None]:
    """Serve in a thread until the block ends; then release stalled answers and stop."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        receiver_box[0].release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def _handler(receiver_box: list[Receiver]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_box[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(
                Received("POST", self.path, {k: v for k, v in self.headers.items()}, body)
            )
            status, headers, stall = receiver.script.pop(0) if receiver.script else (200, {}, False)
            if stall:  # longer than the notifier waits; released when the test ends
                receiver.release.wait(30)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP receiver on 127.0.0.1 (a free port), stopped after the test."""
    box: list[Receiver] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    port = server.server_address[1]
    box.append(Receiver(f"http://127.0.0.1:{port}/hooks/roomtemp?tenant=acme", port))
    with serving(server, box):
        yield box[0]


def local_notifier(timeout_s: float = 5.0) -> HttpSnsNotifier:
    return HttpSnsNotifier(lambda region: None, timeout_s=timeout_s, allow_local=True)


def deliver(notifier: Any, url: str, delivery_id: str = "d-1") -> None:
    notifier.deliver(
        WebhookTarget(url), BODY, secret=SECRET, delivery_id=delivery_id, event="alert.fired"
    )


# -- webhooks ----------------------------------------------------------------------------------


def test_a_webhook_gets_the_body_signed_with_its_headers(receiver: Receiver) -> None:
    deliver(local_notifier(), receiver.url, "fired-acme-r1-1")
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hooks/roomtemp?tenant=acme"
    assert request.body == BODY
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert headers["x-roomtemp-delivery"] == "fired-acme-r1-1"
    assert headers["x-roomtemp-event"] == "alert.fired"
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    # Then a receiver holding the secret can verify what it got
    assert verify(SECRET, request.body, headers["x-roomtemp-signature"])
    assert not verify("another-secret", request.body, headers["x-roomtemp-signature"])


def test_a_receiver_that_fails_twice_then_recovers_gets_it_on_the_third_attempt(
    receiver: Receiver,
) -> None:
    receiver.answer(500)
    receiver.answer(503)
    notifier = local_notifier()
    for status in (500, 503):
        with pytest.raises(DeliveryError) as failed:
            deliver(notifier, receiver.url, "d-7")
        assert failed.value.retryable
        assert failed.value.reason == f"HTTP {status}"
    deliver(notifier, receiver.url, "d-7")
    assert [r.headers[DELIVERY_HEADER] for r in receiver.requests] == ["d-7"] * 3
    assert len({r.headers[SIGNATURE_HEADER] for r in receiver.requests}) == 1


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (410, False), (408, True), (429, True)],
)
def test_client_errors_are_final_except_timeout_and_throttling(
    receiver: Receiver, status: int, retryable: bool
) -> None:
    receiver.answer(status)
    with pytest.raises(DeliveryError) as failed:
        deliver(local_notifier(), receiver.url)
    assert failed.value.reason == f"HTTP {status}"
    assert failed.value.retryable is retryable


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.answer(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})
    with pytest.raises(DeliveryError) as failed:
        deliver(local_notifier(), receiver.url)
    assert not failed.value.retryable
    assert "redirect" in failed.value.reason
    assert [r.path for r in receiver.requests] == ["/hooks/roomtemp?tenant=acme"]


def test_a_receiver_slower_than_the_timeout_is_a_retryable_timeout(receiver: Receiver) -> None:
    receiver.answer(200, stall=True)
    with pytest.raises(DeliveryError) as failed:
        deliver(local_notifier(timeout_s=0.2), receiver.url)
    assert failed.value.retryable
    assert failed.value.reason.startswith("timeout after")


def test_nobody_listening_is_a_retryable_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as failed:
        deliver(local_notifier(), f"http://127.0.0.1:{port}/x")
    assert failed.value.retryable
    assert "cannot connect" in failed.value.reason


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """socket.getaddrinfo answering `answers` (name → addresses); the names asked for."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.5"], "address 10.0.0.5 is private"),
        (["169.254.169.254"], "address 169.254.169.254 is link-local"),
        (["127.0.0.1"], "address 127.0.0.1 is loopback"),
        (["8.8.8.8", "192.168.0.9"], "address 192.168.0.9 is private"),
        (["::ffff:10.0.0.5"], "address ::ffff:10.0.0.5 is private"),
    ],
)
def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, addresses: list[str], reason: str
) -> None:
    # Given a public-looking name that resolves (also) to an address inside the network
    asked = fake_dns(monkeypatch, {"hooks.example.com": addresses})
    notifier = HttpSnsNotifier(lambda region: None, allow_local=False)
    # When it is delivered to in a deployed stage, then it is refused, for good
    with pytest.raises(DeliveryError) as failed:
        deliver(notifier, f"https://hooks.example.com:{receiver.port}/x")
    assert failed.value.reason == reason
    assert not failed.value.retryable
    assert asked == ["hooks.example.com"]
    assert receiver.requests == []


def test_a_name_that_does_not_resolve_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(DeliveryError) as failed:
        deliver(HttpSnsNotifier(lambda region: None), "https://gone.example.com/x")
    assert failed.value.retryable
    assert failed.value.reason == "cannot resolve gone.example.com"


def test_a_stored_url_that_breaks_the_rules_is_not_sent(receiver: Receiver) -> None:
    # A rule saved in the local stage, delivered by a deployed one
    with pytest.raises(DeliveryError) as failed:
        deliver(HttpSnsNotifier(lambda region: None, allow_local=False), receiver.url)
    assert not failed.value.retryable
    assert receiver.requests == []


# -- HTTPS: the checked address is the one connected to, with the name for SNI and the cert ---


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, ssl.SSLContext]]:
    """An HTTPS receiver on 127.0.0.1 for hooks.example.test; a client context trusting it."""
    cert, key = _certificate(tmp_path, "hooks.example.test")
    box: list[Receiver] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    server.socket = served.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    box.append(Receiver(f"https://hooks.example.test:{port}/hook", port))
    client = ssl.create_default_context(cafile=str(cert))
    with serving(server, box):
        yield box[0], client


def test_https_goes_to_the_checked_address_with_the_name_for_sni_and_host(
    monkeypatch: pytest.MonkeyPatch, tls_receiver: tuple[Receiver, ssl.SSLContext]
) -> None:
    receiver, trusted = tls_receiver
    asked = fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    notifier = HttpSnsNotifier(lambda region: None, allow_local=True, tls=trusted)
    deliver(notifier, receiver.url)
    [request] = receiver.requests
    assert request.body == BODY
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert asked == ["hooks.example.test"]  # resolved once: the connection used that answer


def test_a_certificate_for_another_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tls_receiver: tuple[Receiver, ssl.SSLContext]
) -> None:
    receiver, trusted = tls_receiver
    fake_dns(monkeypatch, {"other.example.test": ["127.0.0.1"]})
    notifier = HttpSnsNotifier(lambda region: None, allow_local=True, tls=trusted)
    with pytest.raises(DeliveryError) as failed:
        deliver(notifier, f"https://other.example.test:{receiver.port}/hook")
    assert not failed.value.retryable
    assert "certificate" in failed.value.reason
    assert receiver.requests == []


# -- SNS ---------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _subscribed_queue(region: str, topic_name: str) -> tuple[str, str]:
    """A topic and an SQS queue subscribed to it: (topic ARN, queue URL)."""
    sns = boto3.client("sns", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    url = sqs.create_queue(QueueName=f"{topic_name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, url


def _received(region: str, url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=region)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_an_sns_topic_gets_the_body_with_signature_delivery_and_event(
    aws: None, region: str
) -> None:
    # Given a tenant's topic (in our region or another) with a queue subscribed
    topic, url = _subscribed_queue(region, "acme-alerts")
    # When the wired notifier delivers to it
    wiring.notifier().deliver(
        SnsTarget(topic), BODY, secret=SECRET, delivery_id="fired-9", event="alert.fired"
    )
    # Then the queue holds the body and the attributes a subscriber can check
    [envelope] = _received(region, url)
    assert envelope["Message"] == BODY.decode()
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attributes[DELIVERY_HEADER] == "fired-9"
    assert attributes[EVENT_HEADER] == "alert.fired"
    assert verify(SECRET, envelope["Message"].encode(), attributes[SIGNATURE_HEADER])


def test_a_fifo_topic_is_published_with_the_delivery_id_for_deduplication(aws: None) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="acme.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    wiring.notifier().deliver(
        SnsTarget(topic), BODY, secret=SECRET, delivery_id="fired-9", event="alert.fired"
    )


def test_an_unknown_topic_is_a_final_failure(aws: None) -> None:
    with pytest.raises(DeliveryError) as failed:
        wiring.notifier().deliver(
            SnsTarget("arn:aws:sns:us-east-1:123456789012:nobody-here"),
            BODY,
            secret=SECRET,
            delivery_id="d",
            event="alert.fired",
        )
    assert not failed.value.retryable
    assert failed.value.reason == "SNS topic not found"


class _Refusing:
    def __init__(self, code: str, status: int) -> None:
        self.error = ClientError(
            {
                "Error": {"Code": code, "Message": "no"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "Publish",
        )

    def publish(self, **request: Any) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("Throttling", 400, True),
        ("InternalError", 500, True),
        ("ServiceUnavailable", 503, True),
        ("AuthorizationError", 403, False),
        ("NotFound", 404, False),
        ("InvalidParameter", 400, False),
    ],
)
def test_sns_throttling_and_server_errors_are_retryable_the_rest_final(
    code: str, status: int, retryable: bool
) -> None:
    notifier = HttpSnsNotifier(lambda region: _Refusing(code, status))
    with pytest.raises(DeliveryError) as failed:
        notifier.deliver(
            SnsTarget("arn:aws:sns:us-east-1:123456789012:t"),
            BODY,
            secret=SECRET,
            delivery_id="d",
            event="alert.fired",
        )
    assert failed.value.retryable is retryable


@contextlib.contextmanager
def dripping_receiver() -> Iterator[str]:
    """A receiver that reads the request, then answers one byte every 50 ms, without end (each
    byte well within any step's timeout): only an overall deadline ends the delivery."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not stop.wait(0.05):
                        conn.sendall(b"a")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join()
        server.close()


def test_an_answer_dripped_byte_by_byte_ends_at_the_delivery_deadline() -> None:
    notifier = HttpSnsNotifier(lambda region: None, timeout_s=0.5, deadline_s=1.0, allow_local=True)
    with dripping_receiver() as url, pytest.raises(DeliveryError) as failed:
        deliver(notifier, url)
    assert failed.value.retryable
    assert "delivery deadline" in failed.value.reason


def test_every_sns_publish_names_its_tenant_for_the_topics_filter_policy(aws: None) -> None:
    # Given a topic whose owner subscribed with a filter policy on the tenant attribute
    topic, url = _subscribed_queue("us-east-1", "shared-alerts")
    sns = boto3.client("sns", region_name="us-east-1")
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"],
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"tenant": ["acme"]}),
    )
    # When two tenants' rules publish to it
    for tenant in ("acme", "mallory"):
        wiring.notifier().deliver(
            SnsTarget(topic),
            BODY,
            secret=SECRET,
            delivery_id=f"fired-{tenant}",
            event="alert.fired",
            tenant=tenant,
        )
    # Then only the owner's tenant gets through, with the attribute set
    [envelope] = _received("us-east-1", url)
    assert envelope["MessageAttributes"]["tenant"]["Value"] == "acme"
    assert envelope["MessageAttributes"][DELIVERY_HEADER]["Value"] == "fired-acme"
