"""`make package` output: one template that cfn-lint accepts, and a zip that runs on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra import operations
from infra.local import FAKE_CREDENTIALS, Emulator, free_port
from infra.package import runtime_problems, summarize
from infra.tables import create_table
from infra.template import infra_template, resource_names

if TYPE_CHECKING:
    from tests.deploy.conftest import Package

pytestmark = pytest.mark.slow
MB = 1024 * 1024
# Lambda's own limits: 50 MB zipped for a direct upload, 250 MB unzipped.
LAMBDA_ZIP_LIMIT = 50 * MB
LAMBDA_UNZIPPED_LIMIT = 250 * MB
# What the Lambda runtime provides besides the zip: boto3 and its dependencies.
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def test_packaged_template_passes_cfn_lint(package: Package) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(package.template_path)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_packaged_template_holds_the_infra_and_wires_the_functions(package: Package) -> None:
    # Given the packaged (merged) template and the standalone infra template
    template = package.template()
    resources = template["Resources"]
    infra = infra_template("dev")["Resources"]

    # Then every infra resource arrived unchanged
    for logical_id, resource in infra.items():
        assert resources[logical_id] == resource, logical_id
    # And the API function gets the table, bucket and queues by reference, in SAM Globals
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ROOMTEMP_TABLE_NAME"] == {"Ref": "Table"}
    assert variables["ROOMTEMP_INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    assert variables["ROOMTEMP_REPORTS_QUEUE_URL"] == {"Ref": "ReportsQueue"}
    # And the API stage is throttled and named per stage
    api = resources["RestAPI"]["Properties"]
    assert api["Name"] == resource_names("dev")["api"]
    assert api["MethodSettings"][0]["ThrottlingRateLimit"] > 0
    function = resources["APIHandler"]["Properties"]
    assert function["FunctionName"] == "roomtemp-dev"
    assert function["Handler"] == "app.app"


def test_the_stream_consumer_reads_the_tables_stream_with_a_failure_destination(
    package: Package,
) -> None:
    resources = package.template()["Resources"]
    assert resources["Table"]["Properties"]["StreamSpecification"] == {
        "StreamViewType": "NEW_IMAGE"
    }
    function = resources["Rollups"]["Properties"]
    assert function["FunctionName"] == "roomtemp-dev-rollups"
    (source,) = function["Events"].values()
    events = source["Properties"]
    assert source["Type"] == "DynamoDB"
    assert events["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert events["BisectBatchOnFunctionError"] is True
    assert events["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailuresQueue", "Arn"]
    }
    stage = operations.STAGES["dev"].stream
    assert (events["BatchSize"], events["MaximumBatchingWindowInSeconds"]) == (
        stage.batch_size,
        stage.window_s,
    )
    # Only new readings reach it: its own rollup writes would wake it for nothing
    pattern = json.loads(events["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern["eventName"] == ["INSERT"]
    for alarm in ("RollupsIteratorAgeAlarm", "RollupsErrorsAlarm", "StreamFailuresQueueDepthAlarm"):
        assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"


def test_package_zip_fits_lambda_and_leaves_out_what_lambda_provides(package: Package) -> None:
    with zipfile.ZipFile(package.zip_path) as archive:
        names = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
    top_level = {name.split("/")[0] for name in names}

    size = package.zip_path.stat().st_size
    print(f"deployment.zip: {size / MB:.1f} MB zipped, {unzipped / MB:.1f} MB unzipped")
    assert size < LAMBDA_ZIP_LIMIT
    assert unzipped < LAMBDA_UNZIPPED_LIMIT
    assert {"app.py", "chalicelib", "chalice", "pydantic_core"} <= top_level
    assert not top_level & {"boto3", "botocore", "pip", "setuptools", "moto"}
    # Only what runs in Lambda: no tests, fakes, CLI or tooling
    assert summarize(package.zip_path).unexpected == []
    assert not any(n.startswith(("chalicelib/cli/", "chalicelib/memory")) for n in names)
    assert "tests" not in top_level and "infra" not in top_level
    assert any(n.startswith("pydantic_core/_pydantic_core") and n.endswith(".so") for n in names)


@pytest.fixture
def unpacked(package: Package, tmp_path: Path) -> Path:
    """deployment.zip unzipped into an empty directory."""
    target = tmp_path / "task"
    with zipfile.ZipFile(package.zip_path) as archive:
        archive.extractall(target)
    return target


@pytest.fixture
def lambda_runtime(tmp_path: Path) -> Path:
    """A directory with only what Lambda's Python runtime adds: boto3 and its dependencies."""
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in LAMBDA_PROVIDED:
        if (site / name).exists():
            (runtime / name).symlink_to(site / name)
    return runtime


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = Emulator(free_port()).start()
    yield emulator
    emulator.stop()


INVOKE = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import app

    class Context:
        function_name = "roomtemp-dev"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:roomtemp-dev"
        aws_request_id = "lambda-request-1"
        def get_remaining_time_in_millis(self): return 29000

    event = json.loads(sys.argv[3])
    response = app.app(event, Context())
    modules = [m.__file__ or "" for m in sys.modules.values() if getattr(m, "__file__", None)]
    print("RESPONSE " + json.dumps({"response": response, "modules": modules}))
    """
)


def health_event(request_id: str) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event for GET /health, carrying a key that must not leak."""
    return {
        "resource": "/health",
        "path": "/health",
        "httpMethod": "GET",
        "headers": {
            "Accept": "application/json",
            "Host": "abc.execute-api.us-east-1.amazonaws.com",
            "Authorization": "Bearer rt_secret_key_material",
            "x-api-key": "rt_other_secret",
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/health",
            "httpMethod": "GET",
            "path": "/api/health",
            "stage": "api",
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def invoke(task: Path, runtime: Path, env: dict[str, str], event: dict[str, Any]) -> Any:
    """Run the handler in a fresh interpreter that sees only `task` and `runtime` (-I -S)."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INVOKE, str(task), str(runtime), json.dumps(event)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESPONSE "))
    payload = json.loads(line.removeprefix("RESPONSE "))
    logs = [x for x in (result.stdout + result.stderr).splitlines() if not x.startswith("RESPONSE")]
    return payload["response"], payload["modules"], "\n".join(logs)


def lambda_env(endpoint: str, table: str) -> dict[str, str]:
    """The function's environment: `table`, and the bucket and queues of the same name."""
    return {
        **FAKE_CREDENTIALS,
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "roomtemp-dev",
        "ROOMTEMP_TABLE_NAME": table,
        "ROOMTEMP_BUCKET_NAME": table,
        "ROOMTEMP_INGEST_QUEUE_NAME": f"{table}-ingest",
        "ROOMTEMP_REPORTS_QUEUE_NAME": f"{table}-reports",
        "POWERTOOLS_SERVICE_NAME": "roomtemp",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",  # successful requests are logged at DEBUG
    }


def test_unzipped_package_answers_health_from_the_table(
    unpacked: Path, lambda_runtime: Path, emulator: Emulator
) -> None:
    # Given a table, a bucket and queues on the emulator and the handler seeing only the
    # package and boto3
    import boto3

    table = f"roomtemp-smoke-{emulator.port}"
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    create_table(session.client("dynamodb", endpoint_url=emulator.endpoint), table)
    session.client("s3", endpoint_url=emulator.endpoint).create_bucket(Bucket=table)
    for queue in ("ingest", "reports"):
        session.client("sqs", endpoint_url=emulator.endpoint).create_queue(
            QueueName=f"{table}-{queue}"
        )

    # When API Gateway invokes it for GET /health
    response, modules, output = invoke(
        unpacked, lambda_runtime, lambda_env(emulator.endpoint, table), health_event("req-42")
    )

    # Then it answers 200, having loaded pydantic-core from the package, not the venv
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["status"] == "ok" and set(body["checks"].values()) == {"ok"}
    core = [m for m in modules if "_pydantic_core" in m]
    assert core and all(m.startswith(str(unpacked)) for m in core)
    assert not [m for m in modules if "site-packages" in m and "/runtime/" not in m]
    # And its request log is JSON with the request id as correlation id, without the keys
    logs = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
    request_logs = [x for x in logs if x.get("message") == "request"]
    assert request_logs[0]["correlation_id"] == "req-42"
    assert request_logs[0]["status"] == 200
    assert "rt_secret_key_material" not in output
    assert "rt_other_secret" not in output


def test_unzipped_package_answers_a_clean_503_without_its_table(
    unpacked: Path, lambda_runtime: Path, emulator: Emulator
) -> None:
    env = lambda_env(emulator.endpoint, "roomtemp-missing")

    response, _, _ = invoke(unpacked, lambda_runtime, env, health_event("req-43"))

    assert response["statusCode"] == 503
    assert set(json.loads(response["body"])) == {"Code", "Message"}


def test_package_functions_run_the_python_their_binary_modules_were_built_for(
    package: Package,
) -> None:
    # chalice picks both from the Python it runs under: make package runs it under LAMBDA_RUNTIME
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"

    assert runtime_problems(package.template(), package.zip_path, runtime) == []
