"""Alert targets: which webhook URLs and SNS topics a rule may name, and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.notify import (
    SnsTarget,
    WebhookTarget,
    new_secret,
    parse_target,
    sign,
    target_json,
    verify,
)

ACCEPTED_EVERYWHERE = [
    "https://hooks.example.com/roomtemp",
    "https://hooks.example.com:8443/a/b?tenant=acme&x=1",
    "https://HOOKS.Example.COM/path",
    "https://api.example.co.uk./trailing-dot",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://xn--bcher-kva.example/hook",
]

REFUSED_EVERYWHERE = [
    ("ftp://hooks.example.com/x", "https://"),
    ("hooks.example.com/x", "https://"),
    ("https:///nohost", "no host"),
    ("https://user:pass@hooks.example.com/x", "user name"),
    ("https://user@hooks.example.com/x", "user name"),
    ("https://hooks.example.com:99999/x", "malformed"),
    ("https://hooks.example.com:0/x", "port 0"),
    ("https://hooks example.com/x", "spaces"),
    ("https://hooks.example.com/\nx", "control"),
    ("https://" + "a" * 2050 + ".com/", "longer than"),
    ("https://bücher.example/x", "ASCII"),
    ("https://-bad-.example.com/", "valid host name"),
    ("https://2130706433/", "number"),
    ("https://0x7f.1/", "number"),
    ("https://127.1/", "number"),
    ("http://hooks.example.com/x", "https://"),
]

# Deployed stages only: each of these reaches the machine, the VPC or the metadata service.
SSRF = [
    ("https://127.0.0.1/x", "loopback"),
    ("https://127.9.9.9:8443/x", "loopback"),
    ("https://[::1]/x", "loopback"),
    ("https://10.0.0.5/x", "private"),
    ("https://172.16.3.4/x", "private"),
    ("https://192.168.1.1/x", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fe80::1]/x", "link-local"),
    ("https://[fd00:ec2::254]/x", "private"),  # the IMDS IPv6 address (ULA)
    ("https://100.64.0.1/x", "shared"),
    ("https://0.0.0.0/x", "unspecified"),
    ("https://[::]/x", "unspecified"),
    ("https://224.0.0.1/x", "multicast"),
    ("https://[ff02::1]/x", "multicast"),
    ("https://240.0.0.1/x", "reserved"),
    ("https://255.255.255.255/x", "reserved"),
    ("https://[::ffff:10.0.0.5]/x", "private"),
    ("https://[::ffff:169.254.169.254]/x", "link-local"),
    ("https://[::ffff:127.0.0.1]/x", "loopback"),
    ("https://[2002:a00:5::]/x", "private"),  # 6to4 of 10.0.0.5
    ("https://[64:ff9b::a9fe:a9fe]/x", "link-local"),  # NAT64 of 169.254.169.254
    ("https://localhost/x", "local or internal"),
    ("https://LOCALHOST./x", "local or internal"),
    ("https://api.localhost/x", "local or internal"),
    ("https://metadata.google.internal/computeMetadata/v1/", "local or internal"),
    ("https://ip-10-0-0-5.ec2.internal/x", "local or internal"),
    ("https://printer.local/x", "local or internal"),
    ("https://intranet/x", "fully qualified"),
]

LOCAL_ONLY = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://localhost:9000/hook",
    "http://[::1]:9000/hook",
    "https://localhost/hook",
    "https://10.0.0.5/x",
]


def webhook(url: str, *, allow_local: bool) -> Any:
    return parse_target({"webhook": url}, allow_local=allow_local)


@pytest.mark.parametrize("allow_local", [False, True])
@pytest.mark.parametrize("url", ACCEPTED_EVERYWHERE)
def test_public_https_urls_are_accepted_in_every_stage(url: str, allow_local: bool) -> None:
    assert webhook(url, allow_local=allow_local) == WebhookTarget(url)


@pytest.mark.parametrize("allow_local", [False, True])
@pytest.mark.parametrize(("url", "why"), REFUSED_EVERYWHERE)
def test_malformed_or_plain_http_urls_are_refused_in_every_stage(
    url: str, why: str, allow_local: bool
) -> None:
    with pytest.raises(ValidationError, match=why if not allow_local else None):
        webhook(url, allow_local=allow_local)


@pytest.mark.parametrize(("url", "why"), SSRF)
def test_addresses_inside_the_network_are_refused_in_deployed_stages(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        webhook(url, allow_local=False)


@pytest.mark.parametrize("url", LOCAL_ONLY)
def test_the_local_stage_allows_receivers_on_this_machine(url: str) -> None:
    assert webhook(url, allow_local=True) == WebhookTarget(url)
    with pytest.raises(ValidationError):
        webhook(url, allow_local=False)


def test_the_local_stage_still_wants_https_beyond_loopback() -> None:
    with pytest.raises(ValidationError, match=r"127\.0\.0\.1"):
        webhook("http://10.0.0.5/x", allow_local=True)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sns:us-east-1:123456789012:alerts",
        "arn:aws:sns:eu-central-1:123456789012:Room_Alerts-1",
        "arn:aws:sns:us-east-1:123456789012:alerts.fifo",
        "arn:aws-cn:sns:cn-north-1:123456789012:alerts",
        "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts",
        "arn:aws:sns:ap-southeast-2:123456789012:" + "t" * 256,
    ],
)
def test_sns_topic_arns_are_accepted(arn: str) -> None:
    target = parse_target({"sns": arn}, allow_local=False)
    assert target == SnsTarget(arn)
    assert parse_target(target_json(target), allow_local=False) == target


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sns:us-east-1:12345678901:alerts",  # 11-digit account
        "arn:aws:sns:us-east-1:123456789012:",  # no name
        "arn:aws:sns:us-east-1:123456789012:al erts",
        "arn:aws:sns:us-east-1:123456789012:alerts.fifo.fifo",
        "arn:aws:sns:us-east-1:123456789012:" + "t" * 257,
        "arn:aws:sqs:us-east-1:123456789012:alerts",
        "arn:aws:sns:useast1:123456789012:alerts",
        "arn:azure:sns:us-east-1:123456789012:alerts",
        "arn:aws:sns:cn-north-1:123456789012:alerts",  # China region, commercial partition
        "arn:aws-cn:sns:us-east-1:123456789012:alerts",
        "arn:aws:sns:us-east-1:123456789012:alerts:subscription-id",
    ],
)
def test_malformed_sns_topic_arns_are_refused(arn: str) -> None:
    with pytest.raises(ValidationError):
        parse_target({"sns": arn}, allow_local=False)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"webhook": "https://a.example.com/", "sns": "arn:aws:sns:us-east-1:123456789012:t"},
        {"email": "ops@example.com"},
        {"webhook": 42},
        {"webhook": ""},
        {"sns": None},
    ],
)
def test_a_target_names_exactly_one_webhook_or_topic(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_target(raw, allow_local=True)


def test_a_webhook_target_round_trips_through_json() -> None:
    target = webhook("https://hooks.example.com/x?y=1", allow_local=False)
    assert target_json(target) == {"webhook": "https://hooks.example.com/x?y=1"}
    assert parse_target(target_json(target), allow_local=False) == target


# -- signatures --------------------------------------------------------------------------------


def test_the_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"alert.fired","value":31.5}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    assert verify("s3cret", body, f"sha256={expected}")


def test_a_tampered_body_or_another_secret_does_not_verify() -> None:
    body = b'{"value":31.5}'
    signature = sign("s3cret", body)
    assert not verify("s3cret", b'{"value":11.5}', signature)
    assert not verify("other", body, signature)
    assert not verify("s3cret", body, signature.removeprefix("sha256="))
    assert not verify("s3cret", body, "")


def test_new_secrets_are_long_and_distinct() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)


def test_the_recording_notifier_fails_as_told_then_delivers() -> None:
    from chalicelib import wiring
    from chalicelib.domain.notify import DeliveryError
    from tests.fakes import RecordingNotifier

    fake = RecordingNotifier()
    wiring.override(notifier=fake)
    fake.fail(2, reason="HTTP 503")
    target = SnsTarget("arn:aws:sns:us-east-1:123456789012:t")
    for _ in range(2):
        with pytest.raises(DeliveryError, match="HTTP 503"):
            wiring.notifier().deliver(target, b"{}", secret="s", delivery_id="d", event="e")
    wiring.notifier().deliver(target, b'{"a":1}', secret="s", delivery_id="d", event="e")
    assert len(fake.attempts) == 3
    [delivered] = fake.delivered
    assert delivered.json() == {"a": 1}
    assert delivered.delivery_id == "d"
