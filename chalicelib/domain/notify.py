"""Where alerts are delivered (webhook URLs, SNS topics), which targets are allowed, and how a
delivery is signed. Pure: the adapter (chalicelib/aws/notify.py) sends.

A webhook body is signed with HMAC-SHA256 under the rule's secret; the signature header is
`sha256=<hex>` over the exact bytes of the body, nothing else (docs/webhooks.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib.domain.errors import ValidationError

SIGNATURE_HEADER = "X-Roomtemp-Signature"  # "sha256=" + hex HMAC-SHA256(secret, body)
DELIVERY_HEADER = "X-Roomtemp-Delivery"  # the notification's stable id: receivers de-duplicate
EVENT_HEADER = "X-Roomtemp-Event"  # alert.fired, alert.cleared, ...
TENANT_ATTRIBUTE = "tenant"  # SNS message attribute: the tenant whose rule published it
SIGNATURE_PREFIX = "sha256="
MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class WebhookTarget:
    """An HTTPS endpoint the alert is POSTed to."""

    url: str


@dataclass(frozen=True)
class SnsTarget:
    """An SNS topic (the tenant's) the alert is published to."""

    topic_arn: str


Target = WebhookTarget | SnsTarget


class DeliveryError(Exception):
    """A delivery that did not happen: `reason` is safe to show the tenant; `retryable` says
    whether trying the same delivery later may succeed."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


# -- targets -----------------------------------------------------------------------------------

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Names that resolve inside a network, never to a tenant's public endpoint.
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".lan")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_SNS_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):"
    r"(?P<account>\d{12}):(?P<name>[A-Za-z0-9_-]{1,256}|[A-Za-z0-9_-]{1,251}\.fifo)$"
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IpAddress) -> str | None:
    """Why a deployed stage must not connect to `address` ("private", "link-local", ...), or
    None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local"
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner)
            if problem is not None:
                return problem
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not public"
    return None


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, *, allow_local: bool) -> None:
    """Refuse a host a deployed stage must not reach (and any malformed one)."""
    if not host.isascii():
        raise ValidationError("webhook host must be ASCII (use its xn-- form)")
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        problem = None if allow_local else address_problem(literal)
        if problem is not None:
            raise ValidationError(f"webhook address {literal} is {problem}")
        return
    name = host.removesuffix(".")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise ValidationError(f"webhook host {host!r} is not a valid host name")
    if _NUMERIC_LABEL.match(labels[-1]):
        # 2130706433, 0x7f.1 or 127.1 reach loopback through inet_aton: give a dotted address.
        raise ValidationError(f"webhook host {host!r} is a number, not a name or an address")
    if allow_local:
        return
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise ValidationError(f"webhook host {host!r} is a local or internal name")
    if len(labels) < 2:
        raise ValidationError(f"webhook host {host!r} must be a fully qualified name")


def _parse_webhook(url: str, *, allow_local: bool) -> WebhookTarget:
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValidationError("webhook URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"webhook URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http"):
        raise ValidationError("webhook URL must start with https://")
    if not host:
        raise ValidationError("webhook URL has no host")
    if "@" in parts.netloc:
        raise ValidationError("webhook URL may not carry a user name or password")
    if port == 0:
        raise ValidationError("webhook URL has port 0")
    if scheme == "http" and not (allow_local and _is_loopback_host(host)):
        if allow_local:
            raise ValidationError("webhook URL must be https:// (http:// only to 127.0.0.1)")
        raise ValidationError("webhook URL must start with https://")
    _check_host(host, allow_local=allow_local)
    return WebhookTarget(url)


def _parse_sns(arn: str) -> SnsTarget:
    found = _SNS_ARN.match(arn)
    if found is None:
        raise ValidationError(
            "sns must be a topic ARN: arn:aws:sns:<region>:<12-digit account>:<topic name>"
        )
    partition, region = found["partition"], found["region"]
    expected = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}.get(partition)
    if (expected is None and region.startswith(("cn-", "us-gov-"))) or (
        expected is not None and not region.startswith(expected)
    ):
        raise ValidationError(f"sns topic region {region} is not in partition {partition}")
    return SnsTarget(arn)


def parse_target(raw: Mapping[str, Any], *, allow_local: bool) -> Target:
    """The target `{"webhook": url}` or `{"sns": topic_arn}` names; ValidationError otherwise."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ValidationError('a target is exactly one of {"webhook": url} or {"sns": topic_arn}')
    (kind, value), *_ = raw.items()
    if kind not in ("webhook", "sns"):
        raise ValidationError(f'unknown target {kind!r}: use "webhook" or "sns"')
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{kind} must be a non-empty string")
    if kind == "webhook":
        return _parse_webhook(value, allow_local=allow_local)
    return _parse_sns(value)


def target_json(target: Target) -> dict[str, str]:
    """The JSON form of a target, as parse_target reads it."""
    if isinstance(target, WebhookTarget):
        return {"webhook": target.url}
    return {"sns": target.topic_arn}


def sns_region(target: SnsTarget) -> str:
    """The region of the topic (a publish goes to the topic's own region)."""
    return target.topic_arn.split(":")[3]


def target_summary(raw: Mapping[str, Any]) -> tuple[str, str, str]:
    """What a delivery record may show of a stored target: its kind, its host (a webhook's, or
    the SNS endpoint of the topic's region) — never a path, query or topic name — and a hash of
    the whole target that tells whether the rule's target at an index is still the same one."""
    kind = next(iter(raw), "?") if isinstance(raw, Mapping) else "?"
    value = str(raw.get(kind, "")) if isinstance(raw, Mapping) else ""
    ref = hashlib.sha256(f"{kind}\x1f{value}".encode()).hexdigest()[:16]
    if kind == "webhook":
        try:
            host = (urlsplit(value).hostname or "?").lower()
        except ValueError:
            host = "?"
    elif kind == "sns":
        parts = value.split(":")
        host = f"sns.{parts[3]}.amazonaws.com" if len(parts) > 3 else "?"
    else:
        host = "?"
    return kind, host, ref


# -- signatures --------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret for a rule (shown to the tenant once)."""
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: "sha256=" + hex HMAC-SHA256."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is `body`'s under `secret` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())
