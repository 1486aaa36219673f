"""Report adapter: status items in the table, result JSON and CSV in the bucket."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import keys
from chalicelib.aws.dynamo import DynamoTable
from chalicelib.aws.s3 import S3ObjectStore
from chalicelib.domain.reports import Report, ReportSpec, ReportStatus, ReportSummary


def csv_key(report_id: str) -> str:
    """S3 key of a report's CSV copy."""
    return f"reports/{report_id}.csv"


def json_key(report_id: str) -> str:
    """S3 key of a report's JSON result (too big for an item on long, wide reports)."""
    return f"reports/{report_id}.json"


class DynamoReportRepository:
    """One status item per report (pk `@report#<id>`); results as S3 objects."""

    def __init__(self, table: DynamoTable, objects: S3ObjectStore) -> None:
        self._table = table
        self._objects = objects

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
        index_pk, index_sk = keys.report_index(report.tenant, report.spec.building, report.id)
        item["gsi1pk"] = {"S": index_pk}
        item["gsi1sk"] = {"S": index_sk}
        return self._table.put_if_absent(item)

    def get(self, report_id: str) -> Report | None:
        """The status item, read strongly consistent (a worker must see the latest status)."""
        item = self._table.get(self._key(report_id))
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
            result_bytes=optional("result_bytes"),
            summary=(
                None
                if "summary" not in item
                else ReportSummary.model_validate_json(item["summary"]["S"])
            ),
        )

    def _update(self, report_id: str, status: ReportStatus, values: dict[str, Any]) -> None:
        names = {"#status": "status", **{f"#{k}": k for k in values}}
        attrs = {":status": {"S": status.value}, **{f":{k}": v for k, v in values.items()}}
        sets = ", ".join(["#status = :status", *(f"#{k} = :{k}" for k in values)])
        self._table.update(
            self._key(report_id),
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

    def mark_running(self, report_id: str, started_ms: int) -> None:
        """Status running, started now."""
        self._update(report_id, ReportStatus.RUNNING, {"started_ms": {"N": str(started_ms)}})

    def release(self, report_id: str) -> None:
        """Back to pending; the started time stays as a trace of the attempt."""
        self._update(report_id, ReportStatus.PENDING, {})

    def complete(
        self,
        report_id: str,
        finished_ms: int,
        result: dict[str, Any],
        csv: str,
        summary: dict[str, Any],
    ) -> None:
        """Write the JSON and CSV objects first, then flip the status (readers never see half)."""
        body = json.dumps(result).encode()
        self._objects.put_bytes(json_key(report_id), body, "application/json")
        self._objects.put_bytes(csv_key(report_id), csv.encode(), "text/csv")
        self._update(
            report_id,
            ReportStatus.COMPLETED,
            {
                "finished_ms": {"N": str(finished_ms)},
                "result_bytes": {"N": str(len(body))},
                "summary": {"S": json.dumps(summary)},
            },
        )

    def fail(self, report_id: str, finished_ms: int, message: str) -> None:
        """Status failed, with the reason."""
        self._update(
            report_id,
            ReportStatus.FAILED,
            {"finished_ms": {"N": str(finished_ms)}, "error": {"S": message}},
        )

    def result(self, report_id: str) -> dict[str, Any] | None:
        """The JSON result from the bucket."""
        result: dict[str, Any] | None = self._objects.get_json(json_key(report_id))
        return result

    def csv_link(self, report_id: str) -> str:
        """A presigned GET URL of the CSV, valid for an hour."""
        return self._objects.link(csv_key(report_id))

    def result_link(self, report_id: str) -> str:
        """A presigned GET URL of the JSON result, valid for an hour."""
        return self._objects.link(json_key(report_id))

    def delete_for_building(self, tenant: str, building: str) -> int:
        """Every report of the building (gsi1 lists them under their tenant): objects first,
        then the status item."""
        index_pk, prefix = keys.reports_of_building(tenant, building)
        found = list(
            self._table.query(
                IndexName=keys.GSI1,
                KeyConditionExpression="gsi1pk = :pk AND begins_with(gsi1sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": index_pk}, ":prefix": {"S": prefix}},
                ProjectionExpression="pk, sk, gsi1sk",
            )
        )
        for item in found:
            report_id = item["gsi1sk"]["S"][len(prefix) :]
            self._objects.delete(json_key(report_id))
            self._objects.delete(csv_key(report_id))
            self._table.delete({"pk": item["pk"], "sk": item["sk"]})
        return len(found)
