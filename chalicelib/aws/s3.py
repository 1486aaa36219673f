"""The bucket adapter: streams objects (optionally from a byte offset), stores JSON and files,
hands out presigned links. Every call runs under the retry policy (aws/retry.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.aws.retry import Retrier, each, error_code
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.domain.imports import IMPORTS
from chalicelib.ports import ObjectGoneError

_GONE = {"NoSuchKey", "PreconditionFailed", "404", "412", "InvalidRange"}
# A read the role is refused (its policy, the bucket's, a KMS key): an outage of this deployment.
_DENIED = {"AccessDenied", "403", "AllAccessDisabled"}
LINK_SECONDS = 3600
# Reads in flight at once for one page of imports (GET /imports: up to 3 per import).
READ_CONCURRENCY = 8
R = TypeVar("R")


class S3ObjectStore:
    """One S3 bucket through a low-level client."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        retrier: Retrier | None = None,
        concurrency: int = READ_CONCURRENCY,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self._retrier = retrier or Retrier("the bucket")
        self._pool = ThreadPoolExecutor(concurrency, "s3") if concurrency > 1 else None

    def each(self, work: Callable[[str], R], keys: Sequence[str]) -> Iterator[R]:
        """`work` over `keys` in order, a few at a time (retry.each)."""
        return each(self._pool, work, keys)

    def ping(self) -> None:
        """One key listed under imports/ (the role may list there; HeadBucket would need listing
        the whole bucket): StorageUnavailableError unless the bucket answers."""
        try:
            self._retrier.call(
                self._client.list_objects_v2, Bucket=self.bucket, Prefix=IMPORTS, MaxKeys=1
            )
        except ClientError as exc:
            raise StorageUnavailableError(f"the bucket {self.bucket}: {error_code(exc)}") from None

    def open(self, key: str, *, etag: str | None = None, start: int = 0) -> Any:
        """The object's StreamingBody from byte `start` (of the version with `etag`)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = f'"{etag}"'
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            return self._retrier.call(self._client.get_object, **kwargs)["Body"]
        except ClientError as exc:
            code = error_code(exc)
            if code == "InvalidRange":  # nothing left after `start`
                return _Empty()
            if code in _GONE:
                raise ObjectGoneError(f"object {key} is gone or was replaced ({code})") from None
            self._check_refused(exc, key)
            raise

    def etag(self, key: str) -> str:
        """The object's ETag without quotes."""
        return str(self._head(key)["ETag"]).strip('"')

    def stored_ms(self, key: str) -> int:
        """When the object was last written (epoch ms)."""
        return int(self._head(key)["LastModified"].timestamp() * 1000)

    def _head(self, key: str) -> dict[str, Any]:
        try:
            head: dict[str, Any] = self._retrier.call(
                self._client.head_object, Bucket=self.bucket, Key=key
            )
        except ClientError as exc:
            if error_code(exc) in _GONE:
                raise ObjectGoneError(f"object {key} is gone") from None
            self._check_refused(exc, key)
            raise
        return head

    def get_json(self, key: str) -> Any | None:
        """The JSON under `key`, or None if there is none."""
        try:
            body = self._retrier.call(self._client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return None
            self._check_refused(exc, key)
            raise
        return json.loads(body["Body"].read())

    def _check_refused(self, exc: ClientError, key: str) -> None:
        """A read the role is refused becomes StorageUnavailableError (503), never a raw
        ClientError (a 500)."""
        code = error_code(exc)
        if code in _DENIED:
            raise StorageUnavailableError(
                f"the bucket {self.bucket} refused reading {key} ({code}): check the role's "
                "s3:GetObject and s3:ListBucket grants (docs/deploy.md, IAM)",
                5,
            ) from None

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as a JSON object."""
        self.put_bytes(key, json.dumps(value, indent=1).encode("utf-8"), "application/json")

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`."""
        self._retrier.call(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    def delete(self, key: str) -> None:
        """Delete `key` (absent keys are fine)."""
        self._retrier.call(self._client.delete_object, Bucket=self.bucket, Key=key)

    def list_keys(self, prefix: str, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` keys under `prefix` after `after`, in key order; and whether more
        follow."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if after:
            kwargs["StartAfter"] = after
        try:
            page = self._retrier.call(self._client.list_objects_v2, **kwargs)
        except ClientError as exc:
            self._check_refused(exc, prefix)
            raise
        keys = [str(item["Key"]) for item in page.get("Contents", [])]
        return keys, bool(page.get("IsTruncated"))

    def upload_form(self, key: str, *, max_bytes: int, seconds: int) -> dict[str, Any]:
        """A presigned POST of `key` ({"url", "fields"}) for files of 1 to `max_bytes` bytes,
        valid for `seconds` (signed locally: no call). S3 refuses a larger file (EntityTooLarge)."""
        form: dict[str, Any] = self._client.generate_presigned_post(
            self.bucket,
            key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=seconds,
        )
        return form

    def link(self, key: str, seconds: int = LINK_SECONDS) -> str:
        """A presigned GET URL of `key`, valid for `seconds` (signed locally: no call)."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )
        return url

    def upload(self, path: str, key: str, progress: Any = None) -> None:
        """Upload a local file (multipart when large); `progress(bytes)` is called as it goes."""
        self._client.upload_file(path, self.bucket, key, Callback=progress)


class _Empty:
    def read(self, amount: int = -1) -> bytes:
        return b""
