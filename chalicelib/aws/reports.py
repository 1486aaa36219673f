"""Report adapters: status items in the table, result JSON and CSV in S3, jobs on SQS."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import keys
from chalicelib.aws.readings import storage_errors
from chalicelib.domain.errors import StorageUnavailableError
from chalicelib.domain.reports import Report, ReportSpec, ReportStatus

LINK_SECONDS = 3600


def csv_key(report_id: str) -> str:
    """S3 key of a report's CSV copy."""
    return f"reports/{report_id}.csv"


def json_key(report_id: str) -> str:
    """S3 key of a report's JSON result (too big for an item on long, wide reports)."""
    return f"reports/{report_id}.json"


class DynamoReportRepository:
    """One status item per report (pk `@report#<id>`); results as S3 objects."""

    def __init__(self, client: Any, table_name: str, s3: Any, bucket: str) -> None:
        self._client = client
        self._table = table_name
        self._s3 = s3
        self._bucket = bucket

    def _key(self, report_id: str) -> dict[str, Any]:
        return {"pk": {"S": keys.report_pk(report_id)}, "sk": {"S": keys.REPORT_SK}}

    def create(self, report: Report) -> bool:
        """Put the pending item unless the id exists."""
        item = {
            **self._key(report.id),
            # tenant: from the caller's key (issue 3)
            "tenant": {"S": report.tenant},
            "status": {"S": report.status.value},
            "spec": {"S": report.spec.model_dump_json()},
            "created_ms": {"N": str(report.created_ms)},
        }
        with storage_errors():
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def get(self, report_id: str) -> Report | None:
        """The status item, read strongly consistent (a worker must see the latest status)."""
        with storage_errors():
            response = self._client.get_item(
                TableName=self._table, Key=self._key(report_id), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:
            return None

        def optional(name: str) -> int | None:
            return int(item[name]["N"]) if name in item else None

        return Report(
            id=report_id,
            tenant=item["tenant"]["S"],
            spec=ReportSpec.model_validate_json(item["spec"]["S"]),
            status=ReportStatus(item["status"]["S"]),
            created_ms=int(item["created_ms"]["N"]),
            started_ms=optional("started_ms"),
            finished_ms=optional("finished_ms"),
            error=item["error"]["S"] if "error" in item else None,
        )

    def _update(self, report_id: str, status: ReportStatus, values: dict[str, Any]) -> None:
        names = {"#status": "status", **{f"#{k}": k for k in values}}
        attrs = {":status": {"S": status.value}, **{f":{k}": v for k, v in values.items()}}
        sets = ", ".join(["#status = :status", *(f"#{k} = :{k}" for k in values)])
        with storage_errors():
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key(report_id),
                    UpdateExpression=f"SET {sets}",
                    # A finished report stays finished: a late duplicate delivery changes nothing.
                    ConditionExpression="attribute_exists(pk) AND #status IN (:pending, :running)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        **attrs,
                        ":pending": {"S": ReportStatus.PENDING.value},
                        ":running": {"S": ReportStatus.RUNNING.value},
                    },
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def mark_running(self, report_id: str, started_ms: int) -> None:
        """Status running, started now."""
        self._update(report_id, ReportStatus.RUNNING, {"started_ms": {"N": str(started_ms)}})

    def release(self, report_id: str) -> None:
        """Back to pending; the started time stays as a trace of the attempt."""
        self._update(report_id, ReportStatus.PENDING, {})

    def complete(self, report_id: str, finished_ms: int, result: dict[str, Any], csv: str) -> None:
        """Write the JSON and CSV objects first, then flip the status (readers never see half)."""
        with storage_errors():
            self._s3.put_object(
                Bucket=self._bucket,
                Key=json_key(report_id),
                Body=json.dumps(result).encode(),
                ContentType="application/json",
            )
            self._s3.put_object(
                Bucket=self._bucket,
                Key=csv_key(report_id),
                Body=csv.encode(),
                ContentType="text/csv",
            )
        self._update(report_id, ReportStatus.COMPLETED, {"finished_ms": {"N": str(finished_ms)}})

    def fail(self, report_id: str, finished_ms: int, message: str) -> None:
        """Status failed, with the reason."""
        self._update(
            report_id,
            ReportStatus.FAILED,
            {"finished_ms": {"N": str(finished_ms)}, "error": {"S": message}},
        )

    def result(self, report_id: str) -> dict[str, Any] | None:
        """The JSON result from S3."""
        with storage_errors():
            try:
                body = self._s3.get_object(Bucket=self._bucket, Key=json_key(report_id))["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            result: dict[str, Any] = json.loads(body.read())
        return result

    def csv_link(self, report_id: str) -> str:
        """A presigned GET URL of the CSV, valid for an hour."""
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": csv_key(report_id)},
            ExpiresIn=LINK_SECONDS,
        )
        return url


class SqsReportQueue:
    """Report jobs as SQS messages on the reports queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, message: dict[str, Any]) -> None:
        """Send one job; 503 if SQS is not reachable or not configured."""
        if not self._url:
            raise StorageUnavailableError("the reports queue is not configured", 30)
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps(message))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailableError("the reports queue cannot be reached", 2) from exc
