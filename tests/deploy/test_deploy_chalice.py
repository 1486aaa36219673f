"""`make deploy` (infra/deploy.py) against moto's server: stack, `chalice deploy`, wiring.

The deploy runs twice, as `python -m infra.deploy` in a copy of the project whose requirements.txt
is empty (chalice vendors nothing and calls no package index), against the emulator on 127.0.0.1
with a dead proxy for anything else. What moto does not implement is listed in docs/deploy.md
("What the tests verify against the emulator").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra import operations
from infra.deploy import (
    DeployError,
    deploy_stack,
    stack_name,
    stream_mapping,
)
from infra.local import FAKE_CREDENTIALS, LOCALHOST, free_port, port_open, stop_process, wait_until
from infra.package import runtime_problems
from infra.template import QUEUE_OF_DECORATOR, policy_document

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGE = "dev"
NAMES = operations.resource_names(STAGE)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server (with chalice's Swagger import) in its own process on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.swagger_emulator", "-H", LOCALHOST, "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open(port) or process.poll() is not None, 30, "the emulator")
        assert process.poll() is None, "the emulator exited"
        yield f"http://{LOCALHOST}:{port}"
    finally:
        stop_process(process)


def project_copy(target: Path) -> Path:
    """The app, its config and policies, with an empty requirements.txt (nothing to download)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(ROOT / "app.py", target / "app.py")
    shutil.copytree(ROOT / "chalicelib", target / "chalicelib", ignore=ignore)
    (target / ".chalice").mkdir()
    for path in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(path, target / ".chalice" / path.name)
    (target / "requirements.txt").write_text("# nothing: chalice vendors no dependency\n")
    return target


def environment(endpoint: str, home: Path) -> dict[str, str]:
    """Fake credentials, the emulator, and no way out: a dead proxy for all but 127.0.0.1."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOMTEMP_"))}
    return {
        **keep,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "PIP_NO_INDEX": "1",
    }


@dataclass
class Deployment:
    """Two `make deploy` runs against the emulator, and what existed after the first."""

    endpoint: str
    project: Path
    outputs: list[str]
    after_first: dict[str, Any]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def deployed(self) -> list[dict[str, Any]]:
        path = self.project / ".chalice" / "deployed" / f"{STAGE}.json"
        resources: list[dict[str, Any]] = json.loads(path.read_text())["resources"]
        return resources

    def inventory(self) -> dict[str, Any]:
        """What exists: functions, mappings, REST APIs, stacks."""
        mappings = self.client("lambda").list_event_source_mappings()["EventSourceMappings"]
        return {
            "functions": sorted(
                f["FunctionName"] for f in self.client("lambda").list_functions()["Functions"]
            ),
            "mappings": sorted((m["FunctionArn"], m["EventSourceArn"]) for m in mappings),
            "apis": [a["id"] for a in self.client("apigateway").get_rest_apis()["items"]],
            "stacks": [
                s["StackName"] for s in self.client("cloudformation").describe_stacks()["Stacks"]
            ],
        }

    def queue_arn(self, name: str) -> str:
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return arn


def run_deploy(project: Path, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "infra.deploy", "--stage", STAGE]
    options = ["--project-dir", str(project), "--chalice", str(BIN / "chalice"), "--any-runtime"]
    result = subprocess.run(
        [*command, *options], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def deployment(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    project = project_copy(tmp_path_factory.mktemp("project"))
    env = environment(endpoint, tmp_path_factory.mktemp("home"))
    first = run_deploy(project, env)
    state = Deployment(endpoint, project, [first], {})
    state.after_first = state.inventory()
    state.outputs.append(run_deploy(project, env))
    return state


def test_the_stack_creates_the_table_with_its_stream_the_bucket_and_the_queues(
    deployment: Deployment,
) -> None:
    stack = deployment.client("cloudformation").describe_stacks(StackName=stack_name(STAGE))
    assert stack["Stacks"][0]["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    table = deployment.client("dynamodb").describe_table(TableName=NAMES["table"])["Table"]
    assert table["StreamSpecification"]["StreamEnabled"] is True
    deployment.client("s3").head_bucket(Bucket=NAMES["bucket"])
    sqs = deployment.client("sqs")
    for work, dlq in (("ingest_queue", "ingest_dlq"), ("reports_queue", "reports_dlq")):
        url = sqs.get_queue_url(QueueName=NAMES[work])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == deployment.queue_arn(NAMES[dlq])
    sqs.get_queue_url(QueueName=NAMES["stream_failures"])


def test_every_function_exists_with_the_stage_environment_size_and_policy(
    deployment: Deployment,
) -> None:
    lambda_client, iam = deployment.client("lambda"), deployment.client("iam")
    stage = operations.STAGES[STAGE]
    sizes = {NAMES["functions"]: stage.api} | {
        f"{NAMES['functions']}-{handler}": getattr(stage, role)
        for handler, role in operations.CONSUMERS.items()
    }
    functions = [r for r in deployment.deployed() if r["resource_type"] == "lambda_function"]
    assert {f["lambda_arn"].rsplit(":", 1)[-1] for f in functions} >= set(sizes)
    for function in functions:
        config = lambda_client.get_function_configuration(FunctionName=function["lambda_arn"])
        variables = config["Environment"]["Variables"]
        assert variables["ROOMTEMP_TABLE_NAME"] == NAMES["table"]
        assert variables["ROOMTEMP_INGEST_QUEUE_NAME"] == NAMES["ingest_queue"]
        assert variables["ROOMTEMP_REPORTS_QUEUE_NAME"] == NAMES["reports_queue"]
        # chalice deploys the Python it runs under (make deploy: .venv-deploy, python3.13)
        assert config["Runtime"] == f"python{sys.version_info[0]}.{sys.version_info[1]}"
        if config["FunctionName"] in sizes:
            size = sizes[config["FunctionName"]]
            assert (config["MemorySize"], config["Timeout"]) == (size.memory_mb, size.timeout_s)
        role = config["Role"].rsplit("/", 1)[-1]
        (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        policy = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        assert policy == policy_document(STAGE)


def test_each_queue_handler_reads_its_stage_queue_and_reports_failed_messages(
    deployment: Deployment,
) -> None:
    mappings = deployment.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    sqs_mappings = [m for m in mappings if m["EventSourceArn"].startswith("arn:aws:sqs:")]

    # Every queue the app's handlers listen to is the stage's, never the decorator's default
    stage_queues = {f"{queue}-{STAGE}" for queue in QUEUE_OF_DECORATOR}
    assert {m["EventSourceArn"].rsplit(":", 1)[-1] for m in sqs_mappings} == stage_queues
    for mapping in sqs_mappings:
        assert mapping["FunctionArn"].rsplit(":", 1)[-1].startswith(NAMES["functions"] + "-")
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    by_queue = {m["EventSourceArn"].rsplit(":", 1)[-1]: m for m in sqs_mappings}
    ingest = by_queue[NAMES["ingest_queue"]]
    assert ingest["FunctionArn"].endswith(f":{NAMES['functions']}-ingest")
    assert ingest["EventSourceArn"] == deployment.queue_arn(NAMES["ingest_queue"])


def test_the_stream_consumer_reads_the_tables_stream_with_the_stage_settings(
    deployment: Deployment,
) -> None:
    table = deployment.client("dynamodb").describe_table(TableName=NAMES["table"])["Table"]
    mappings = deployment.client("lambda").list_event_source_mappings(
        EventSourceArn=table["LatestStreamArn"]
    )["EventSourceMappings"]

    (mapping,) = mappings
    stream = operations.STAGES[STAGE].stream
    assert mapping["FunctionArn"].endswith(f":{NAMES['functions']}-rollups")
    assert mapping["BatchSize"] == stream.batch_size
    assert mapping["MaximumBatchingWindowInSeconds"] == stream.window_s
    assert mapping["MaximumRetryAttempts"] == stream.retry_attempts
    assert mapping["MaximumRecordAgeInSeconds"] == stream.max_record_age_s
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": deployment.queue_arn(NAMES["stream_failures"])}
    }
    pattern = json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern["eventName"] == ["INSERT"]


def test_the_api_calls_the_api_function_is_named_for_its_alarm_and_throttled(
    deployment: Deployment,
) -> None:
    apigateway = deployment.client("apigateway")
    (api,) = [r for r in deployment.deployed() if r["resource_type"] == "rest_api"]
    rest_api = apigateway.get_rest_api(restApiId=api["rest_api_id"])
    assert rest_api["name"] == NAMES["api"]  # the 5xx alarm's ApiName dimension
    resources = apigateway.get_resources(restApiId=api["rest_api_id"], limit=500)["items"]
    health = next(r for r in resources if r["path"] == "/health")
    integration = apigateway.get_integration(
        restApiId=api["rest_api_id"], resourceId=health["id"], httpMethod="GET"
    )
    assert integration["type"].upper() == "AWS_PROXY"  # moto keeps chalice's lower case
    assert integration["uri"].endswith(f":function:{NAMES['functions']}/invocations")
    stage = apigateway.get_stage(restApiId=api["rest_api_id"], stageName="api")
    numbers = operations.STAGES[STAGE]
    settings = stage["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == numbers.throttle_rate
    assert settings["throttlingBurstLimit"] == numbers.throttle_burst
    policy = deployment.client("lambda").get_policy(FunctionName=NAMES["functions"])["Policy"]
    assert "apigateway.amazonaws.com" in policy
    assert api["rest_api_url"] in deployment.outputs[-1]


def test_the_api_functions_log_group_keeps_the_stage_retention(deployment: Deployment) -> None:
    group = f"/aws/lambda/{NAMES['functions']}"
    groups = deployment.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    (found,) = [g for g in groups if g["logGroupName"] == group]
    assert found["retentionInDays"] == operations.STAGES[STAGE].log_retention_days


def test_a_second_deploy_updates_without_duplicating_anything(deployment: Deployment) -> None:
    assert deployment.inventory() == deployment.after_first
    assert len(deployment.after_first["apis"]) == 1
    assert "Updating lambda function" in deployment.outputs[1]


def test_the_deployed_zip_holds_only_the_app_and_chalice(deployment: Deployment) -> None:
    (archive,) = (deployment.project / ".chalice" / "deployments").glob("*.zip")
    with zipfile.ZipFile(archive) as package:
        top_level = {name.split("/")[0] for name in package.namelist()}
    assert top_level == {"app.py", "chalice", "chalicelib"}


def test_every_queue_of_the_template_is_read_from_a_variable_app_py_reads() -> None:
    source = (ROOT / "app.py").read_text()
    for queue in QUEUE_OF_DECORATOR:
        assert f'os.environ.get("{operations.queue_variable(queue)}", "{queue}")' in source, queue


# Where moto differs from CloudFormation (it never answers "No updates are to be performed", and
# its stacks do not fail), botocore's Stubber plays CloudFormation's answers.
def stubbed_cloudformation() -> tuple[Any, Stubber]:
    client = boto3.client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return client, Stubber(client)


def stack(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": stack_name(STAGE),
                "CreationTime": "2026-11-30T00:00:00Z",
                "StackStatus": status,
                "Outputs": [{"OutputKey": "TableName", "OutputValue": NAMES["table"]}],
            }
        ]
    }


def test_an_unchanged_stack_is_left_as_it_is() -> None:
    client, stubber = stubbed_cloudformation()
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stubber.add_client_error(
        "update_stack",
        service_error_code="ValidationError",
        service_message="No updates are to be performed.",
    )
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stubber.add_response("describe_stack_resources", {"StackResources": []})

    with stubber:
        result = deploy_stack(client, STAGE, delay_s=1)

    assert result.outputs == {"TableName": NAMES["table"]}
    stubber.assert_no_pending_responses()


def test_a_failed_stack_names_its_failed_resources_and_why() -> None:
    client, stubber = stubbed_cloudformation()
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {stack_name(STAGE)} does not exist",
    )
    stubber.add_response("create_stack", {"StackId": "arn:aws:cloudformation:stack/x"})
    stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"))  # the waiter gives up
    event = {
        "StackId": "arn:aws:cloudformation:stack/x",
        "EventId": "1",
        "StackName": stack_name(STAGE),
        "Timestamp": "2026-11-30T00:00:00Z",
    }
    stubber.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                {
                    **event,
                    "LogicalResourceId": "DataBucket",
                    "ResourceType": "AWS::S3::Bucket",
                    "ResourceStatus": "CREATE_FAILED",
                    "ResourceStatusReason": "roomtemp-data-dev already exists",
                },
                {
                    **event,
                    "LogicalResourceId": stack_name(STAGE),
                    "ResourceType": "AWS::CloudFormation::Stack",
                    "ResourceStatus": "CREATE_IN_PROGRESS",
                    "ResourceStatusReason": "User Initiated",
                },
            ]
        },
    )

    with stubber, pytest.raises(DeployError) as failure:
        deploy_stack(client, STAGE, delay_s=1)

    assert "DataBucket (AWS::S3::Bucket): CREATE_FAILED: roomtemp-data-dev already exists" in str(
        failure.value
    )


def test_a_stack_left_by_a_failed_create_is_refused_with_what_to_do() -> None:
    client, stubber = stubbed_cloudformation()
    stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"))

    with stubber, pytest.raises(DeployError, match="delete-stack") as refused:
        deploy_stack(client, STAGE, delay_s=1)

    # The bucket outlives the stack (DeletionPolicy Retain): without deleting it, the next
    # create fails on it again
    assert f"delete the retained bucket {NAMES['bucket']} if it is empty" in str(refused.value)


def test_the_stream_settings_come_from_the_stage_and_name_the_failure_queue() -> None:
    settings = stream_mapping("prod", "arn:aws:sqs:us-east-1:1:roomtemp-stream-failures-prod")

    assert settings["BatchSize"] == operations.STAGES["prod"].stream.batch_size
    assert settings["DestinationConfig"] == {
        "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:1:roomtemp-stream-failures-prod"}
    }
    # The Lambda API cannot change these on an existing mapping (chalice sets them on create)
    assert "Stream" not in settings and "StartingPosition" not in settings


def test_make_test_never_deploys_and_make_deploy_runs_chalice_under_the_lambda_runtime() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "test", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    test_part, deploy_part = dry_run.split("pytest", 1)
    assert "infra.deploy" not in test_part
    assert ".venv-deploy/bin/python -m infra.deploy" in deploy_part
    makefile = (ROOT / "Makefile").read_text()
    assert f"LAMBDA_RUNTIME := {operations.LAMBDA_RUNTIME}\n" in makefile


def test_client_errors_other_than_no_updates_stop_the_deploy() -> None:
    client, stubber = stubbed_cloudformation()
    stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stubber.add_client_error(
        "update_stack", service_error_code="AccessDenied", service_message="not allowed"
    )

    with stubber, pytest.raises(DeployError, match="not allowed"):
        deploy_stack(client, STAGE, delay_s=1)


def test_a_package_for_another_python_than_the_runtime_is_refused(tmp_path: Path) -> None:
    # Given a package chalice built under Python 3.11 (its runtime and its pydantic-core wheel)
    archive = tmp_path / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("app.py", "")
        package.writestr("pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so", "")
    function = {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.11"}}
    template = {"Resources": {"APIHandler": function}}

    # Then it is refused for python3.13 (both the runtime and the binary module), fine for 3.11
    problems = runtime_problems(template, archive, operations.LAMBDA_RUNTIME)
    assert len(problems) == 2, problems
    assert runtime_problems(template, archive, "python3.11") == []
