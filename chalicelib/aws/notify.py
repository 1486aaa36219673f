"""The notifier: webhooks POSTed over HTTPS (stdlib http.client), SNS topics published with boto3.

One attempt per call: the alerts' notifier queue retries with backoff (SQS redelivery). A
webhook's host is resolved at send time and every address must be public (in deployed stages);
the connection then goes to the address that was checked, with the URL's name for SNI,
certificate checks and Host, so a second DNS answer (rebinding) cannot send it elsewhere.
Redirects are never followed: a 3xx is a failure (it could point inside the VPC).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.retry import RETRYABLE_CODES, error_code
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.notify import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TENANT_ATTRIBUTE,
    DeliveryError,
    SnsTarget,
    Target,
    WebhookTarget,
    address_problem,
    parse_target,
    sign,
    sns_region,
)

USER_AGENT = "roomtemp-webhooks/1"
RESPONSE_CAP_BYTES = 1024  # of a receiver's answer only this much is read (then closed)
Resolver = Callable[..., list[Any]]
Address = tuple[int, tuple[Any, ...]]  # (socket family, sockaddr) as getaddrinfo answers


def _open(address: Address, timeout: float | None) -> socket.socket:
    """A TCP connection to exactly this address (no second name lookup)."""
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


# SNS errors that a later attempt cannot fix (the topic is gone or does not let us publish).
_SNS_FINAL = {
    "NotFound": "SNS topic not found",
    "NotFoundException": "SNS topic not found",
    "AuthorizationError": "not authorized to publish to the SNS topic (check its topic policy)",
    "AuthorizationErrorException": "not authorized to publish to the SNS topic",
    "InvalidParameter": "SNS refused the message (invalid parameter)",
    "InvalidParameterValue": "SNS refused the message (invalid parameter)",
    "EndpointDisabled": "SNS endpoint disabled",
    "KMSAccessDenied": "the SNS topic's KMS key does not let us publish",
    "KMSDisabled": "the SNS topic's KMS key is disabled",
    "KMSNotFound": "the SNS topic's KMS key was not found",
    "KMSInvalidState": "the SNS topic's KMS key is not usable",
}


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one checked address, with the URL's host name for SNI, certificate and Host."""

    def __init__(
        self, host: str, port: int, *, address: Address, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = _open(self._address, self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to one checked address (the local stage's http://127.0.0.1 receivers only)."""

    def __init__(self, host: str, port: int, *, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = _open(self._address, self.timeout)


def _seconds(value: float) -> str:
    return f"{value:g} s"


class HttpSnsNotifier:
    """Delivers one notification to a webhook (HTTPS POST) or an SNS topic (Publish)."""

    def __init__(
        self,
        sns_client: Callable[[str], Any],
        *,
        timeout_s: float = 5.0,
        deadline_s: float | None = None,
        allow_local: bool = False,
        resolve: Resolver | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._sns_client = sns_client  # the region's boto3 SNS client (built on first use)
        self.timeout_s = timeout_s  # each network step
        # The whole POST (every address, connect, send, answer): a receiver that drips its answer
        # or a name with many dead addresses cannot hold the notify Lambda longer than this.
        self.deadline_s = 2 * timeout_s if deadline_s is None else deadline_s
        self.allow_local = allow_local
        self._resolve = resolve
        self._tls = tls

    def deliver(
        self,
        target: Target,
        body: bytes,
        *,
        secret: str,
        delivery_id: str,
        event: str,
        tenant: str = "",
    ) -> None:
        """Deliver `body` once; DeliveryError (with `retryable`) when it was not delivered."""
        signature = sign(secret, body)
        if isinstance(target, WebhookTarget):
            self._post(target, body, signature=signature, delivery_id=delivery_id, event=event)
        else:
            self._publish(
                target,
                body,
                signature=signature,
                delivery_id=delivery_id,
                event=event,
                tenant=tenant,
            )

    # -- webhooks ------------------------------------------------------------------------------

    def _addresses(self, host: str, port: int) -> list[Address]:
        """The host's addresses, every one checked (in deployed stages) before any is used."""
        resolve = self._resolve or socket.getaddrinfo
        try:
            found = resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise DeliveryError(f"cannot resolve {host}", retryable=True) from None
        addresses: list[Address] = []
        for family, _, _, _, sockaddr in found:
            if (family, sockaddr) not in addresses:
                addresses.append((family, sockaddr))
        if not addresses:
            raise DeliveryError(f"cannot resolve {host}", retryable=True)
        if not self.allow_local:
            for _, sockaddr in addresses:
                text = str(sockaddr[0]).split("%", 1)[0]
                problem = address_problem(ipaddress.ip_address(text))
                if problem is not None:
                    raise DeliveryError(f"address {text} is {problem}", retryable=False)
        return addresses

    def _connection(
        self, scheme: str, host: str, port: int, address: Address, timeout: float
    ) -> Any:
        if scheme == "https":
            if self._tls is None:  # built once (≈ 20 ms of CPU), shared by every connection
                self._tls = ssl.create_default_context()
            context = self._tls
            return PinnedHTTPSConnection(
                host, port, address=address, timeout=timeout, context=context
            )
        return PinnedHTTPConnection(host, port, address=address, timeout=timeout)

    def _post(
        self, target: WebhookTarget, body: bytes, *, signature: str, delivery_id: str, event: str
    ) -> None:
        try:  # checked again: the rule may predate a stricter rule or setting
            parse_target({"webhook": target.url}, allow_local=self.allow_local)
        except ValidationError as exc:
            raise DeliveryError(exc.message, retryable=False) from None
        parts = urlsplit(target.url)
        scheme = parts.scheme.lower()
        host = str(parts.hostname)
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature,
            DELIVERY_HEADER: delivery_id,
            EVENT_HEADER: event,
        }
        deadline = time.monotonic() + self.deadline_s
        addresses = self._addresses(host, port)
        last: DeliveryError | None = None
        for address in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                last = self._past_deadline()
                break
            connection = self._connection(scheme, host, port, address, min(self.timeout_s, left))
            try:
                try:
                    connection.connect()
                except TimeoutError:
                    last = DeliveryError(
                        f"connect timeout after {_seconds(self.timeout_s)}", retryable=True
                    )
                    continue
                except ssl.SSLCertVerificationError:
                    raise DeliveryError(
                        f"TLS certificate of {host} not valid", retryable=False
                    ) from None
                except (ssl.SSLError, OSError):
                    last = DeliveryError(f"cannot connect to {host}:{port}", retryable=True)
                    continue
                status = self._exchange(connection, path, body, headers, deadline)
            finally:
                connection.close()
            self._judge(status)
            return
        assert last is not None
        raise last

    def _past_deadline(self) -> DeliveryError:
        return DeliveryError(
            f"no answer within the delivery deadline of {_seconds(self.deadline_s)}",
            retryable=True,
        )

    def _exchange(
        self, connection: Any, path: str, body: bytes, headers: dict[str, str], deadline: float
    ) -> int:
        """Send the POST on an open connection; the answer's status (its body is capped). The
        socket's timeout bounds each step; a watchdog shuts the socket at the deadline, so an
        answer dripped a byte at a time cannot take longer."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._past_deadline()
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(left, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(RESPONSE_CAP_BYTES)
            status = int(response.status)
        except TimeoutError:
            if expired.is_set():
                raise self._past_deadline() from None
            raise DeliveryError(
                f"timeout after {_seconds(self.timeout_s)}", retryable=True
            ) from None
        except (http.client.HTTPException, OSError):
            if expired.is_set():
                raise self._past_deadline() from None
            raise DeliveryError("connection failed before an answer", retryable=True) from None
        finally:
            watchdog.cancel()
        if expired.is_set():
            raise self._past_deadline()
        return status

    @staticmethod
    def _judge(status: int) -> None:
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise DeliveryError(f"HTTP {status}: redirects are not followed", retryable=False)
        retryable = status in (408, 429) or status >= 500
        raise DeliveryError(f"HTTP {status}", retryable=retryable)

    # -- SNS -----------------------------------------------------------------------------------

    def _publish(
        self,
        target: SnsTarget,
        body: bytes,
        *,
        signature: str,
        delivery_id: str,
        event: str,
        tenant: str,
    ) -> None:
        try:
            message = body.decode("utf-8")
        except UnicodeDecodeError:
            raise DeliveryError("the message is not UTF-8 text", retryable=False) from None
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (
                (SIGNATURE_HEADER, signature),
                (DELIVERY_HEADER, delivery_id),
                (EVENT_HEADER, event),
            )
        }
        if tenant:  # topic owners filter on it (a subscription filter policy: docs/webhooks.md)
            attributes[TENANT_ATTRIBUTE] = {"DataType": "String", "StringValue": tenant}
        request: dict[str, Any] = {
            "TopicArn": target.topic_arn,
            "Message": message,
            "MessageAttributes": attributes,
        }
        if target.topic_arn.endswith(".fifo"):
            # One group keeps the topic's order; SNS drops a redelivery of the same id (5 min).
            request["MessageGroupId"] = "roomtemp-alerts"
            request["MessageDeduplicationId"] = delivery_id[:128]
        try:
            self._sns_client(sns_region(target)).publish(**request)
        except ClientError as exc:
            code = error_code(exc)
            if code in _SNS_FINAL:
                raise DeliveryError(_SNS_FINAL[code], retryable=False) from None
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in RETRYABLE_CODES or status >= 500 or status == 429:
                raise DeliveryError(f"SNS {code or status}, retry later", retryable=True) from None
            raise DeliveryError(f"SNS refused the message ({code})", retryable=False) from None
        except BotoCoreError:
            raise DeliveryError("SNS cannot be reached", retryable=True) from None
