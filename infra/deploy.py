"""`make deploy STAGE=dev`: the `chalice deploy` path, end to end (docs/deploy.md).

    python -m infra.deploy --stage dev          # under .venv-deploy (Python 3.13, the runtime)

1. creates or updates the CloudFormation stack `roomtemp-<stage>-infra` from
   `infra_template(stage)` (table + stream, bucket, queues + DLQs, stream-failures queue, cursor
   secret, alarm topic, alarms) and waits for it;
2. runs `chalice deploy --stage <stage>` with the stage's queue names and the table's stream ARN in
   its environment, so app.py's decorators subscribe the handlers to this stage's resources;
3. sets what Chalice's deployer cannot express (on each mapping once it has left
   Creating/Updating, retrying what Lambda refuses while it changes): `ReportBatchItemFailures`
   on every SQS event source mapping, the stage's stream settings on the stream's (batch size,
   window, retries, bisection, record age, filter, on-failure queue), the REST API's name (the
   5xx alarm's dimension), its stage throttling, and the API log group's retention (chalice names
   that group after the handler, `-api_handler`, not after the function);
4. prints what exists.

Run again, it updates: the stack is updated (or left as it is), chalice updates its functions and
mappings in place (it records them in .chalice/deployed/<stage>.json), the settings are set again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from infra import operations
from infra.template import QUEUE_OF_DECORATOR, ROOT, STAGES, infra_template, stream_event_source

# The settings every SQS handler's mapping gets: only the messages a handler reports are retried.
SQS_MAPPING = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
# Event source properties the Lambda API cannot change on an existing mapping.
FIXED_ON_CREATE = ("Stream", "StartingPosition")
NO_UPDATES = "No updates are to be performed"
# A mapping chalice just made or changed is `Creating`/`Updating` for a while; Lambda refuses to
# update it until it is one of these.
MAPPING_SETTLED = ("Enabled", "Disabled")
# What Lambda answers while a mapping is still changing (ResourceInUse) or while the role that
# allows its new on-failure destination propagates (InvalidParameterValue): worth a retry.
MAPPING_RETRIED = ("ResourceInUseException", "InvalidParameterValueException")


@dataclass(frozen=True)
class MappingPatience:
    """How long to wait for a mapping to settle, and how often to retry its update."""

    polls: int = 60  # get_event_source_mapping calls before giving up (5 minutes at 5 s)
    poll_s: float = 5.0
    attempts: int = 6  # update_event_source_mapping calls, with doubling pauses
    backoff_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep


class DeployError(Exception):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Stack:
    """The infra stack as deployed: its outputs and its resources' physical ids."""

    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id (a queue's is its URL)
    types: dict[str, str]  # logical id -> resource type


def stack_name(stage: str) -> str:
    """The infra stack of a stage (the packaged path's stack is `roomtemp-<stage>`)."""
    return f"{operations.APP_NAME}-{stage}-infra"


def deploy_stack(cloudformation: Any, stage: str, *, delay_s: int = 10) -> Stack:
    """Create or update the stage's infra stack, wait for it, and return what it holds."""
    name = stack_name(stage)
    body = json.dumps(infra_template(stage))
    status = _stack_status(cloudformation, name)
    if status == "ROLLBACK_COMPLETE":  # a failed first create: CloudFormation cannot update it
        raise DeployError(
            f"stack {name} is ROLLBACK_COMPLETE (its creation failed): delete it "
            f"(aws cloudformation delete-stack --stack-name {name}), delete the retained bucket "
            f"{operations.resource_names(stage)['bucket']} if it is empty (aws s3 rb "
            f"s3://{operations.resource_names(stage)['bucket']}; the stack keeps it, "
            "DeletionPolicy Retain, and the next create fails on it), and deploy again"
        )
    waiter = "stack_update_complete" if status else "stack_create_complete"
    try:
        if status:
            cloudformation.update_stack(StackName=name, TemplateBody=body)
        else:
            cloudformation.create_stack(StackName=name, TemplateBody=body)
    except ClientError as error:
        if NO_UPDATES not in str(error):
            raise DeployError(f"stack {name}: {error}") from error
        waiter = ""
    if waiter:
        try:
            cloudformation.get_waiter(waiter).wait(
                StackName=name, WaiterConfig={"Delay": delay_s, "MaxAttempts": 3600 // delay_s}
            )
        except WaiterError as error:
            raise DeployError(
                f"stack {name} did not deploy ({error}):\n" + failure_reasons(cloudformation, name)
            ) from error
    return read_stack(cloudformation, name)


def _stack_status(cloudformation: Any, name: str) -> str | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise DeployError(f"stack {name}: {error}") from error
    return str(stacks[0]["StackStatus"]) if stacks else None


def failure_reasons(cloudformation: Any, name: str) -> str:
    """The stack's failed resources and why, newest first, from its last operation."""
    lines = []
    for event in cloudformation.describe_stack_events(StackName=name)["StackEvents"]:
        status = event.get("ResourceStatus", "")
        if status.endswith("FAILED"):
            lines.append(
                f"  {event.get('LogicalResourceId')} ({event.get('ResourceType')}): {status}: "
                f"{event.get('ResourceStatusReason', 'no reason given')}"
            )
        elif (
            status.endswith("IN_PROGRESS") and event.get("ResourceStatusReason") == "User Initiated"
        ):
            break  # the start of the last operation (events come newest first)
    return "\n".join(lines) or "  (no failed resource events)"


def read_stack(cloudformation: Any, name: str) -> Stack:
    """The stack's outputs and resources."""
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    # moto lists the resource types it does not create without ids: skip those
    known = [r for r in resources if "LogicalResourceId" in r]
    return Stack(
        name=name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        resources={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in known},
        types={r["LogicalResourceId"]: r["ResourceType"] for r in known},
    )


def chalice_environment(stack: Stack) -> dict[str, str]:
    """What app.py's decorators read at `chalice deploy`: every queue's stage name, the stream."""
    environment = {}
    for decorator_queue, logical_id in QUEUE_OF_DECORATOR.items():
        url = stack.resources.get(logical_id)
        if not url:
            raise DeployError(
                f"stack {stack.name} has no {logical_id} (the queue of {decorator_queue!r} in "
                "infra.template.QUEUE_OF_DECORATOR): add it to infra_template"
            )
        environment[operations.queue_variable(decorator_queue)] = url.rsplit("/", 1)[-1]
    environment["ROOMTEMP_TABLE_STREAM_ARN"] = stack.outputs["TableStreamArn"]
    return environment


def run_chalice(chalice: Path, project_dir: Path, stage: str, environment: dict[str, str]) -> None:
    """`chalice deploy --stage <stage>` in project_dir, with `environment` added to ours."""
    command = [str(chalice), "deploy", "--stage", stage]
    print("$ " + " ".join(f"{k}={v}" for k, v in environment.items()) + " " + " ".join(command))
    result = subprocess.run(command, cwd=project_dir, env={**os.environ, **environment})
    if result.returncode != 0:
        raise DeployError(f"chalice deploy failed (exit {result.returncode}): see its output above")


def _python_of(chalice: Path) -> list[str]:
    """The interpreter command that runs the `chalice` script (its shebang)."""
    return chalice.read_text(errors="replace").splitlines()[0].removeprefix("#!").split()


def chalice_runtime(chalice: Path) -> str:
    """The Lambda runtime `chalice` will choose: that of the Python it runs under."""
    version = subprocess.run(
        [*_python_of(chalice), "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return version.stdout.strip()


LIST_QUEUES = (
    "import json, app; print(json.dumps(sorted({s.queue for s in app.app.event_sources "
    "if type(s).__name__ == 'SQSEventConfig'})))"
)


def app_queues(chalice: Path, project_dir: Path, environment: dict[str, str]) -> set[str]:
    """The queues app.py's SQS handlers listen to, as chalice will see them."""
    result = subprocess.run(
        [*_python_of(chalice), "-c", LIST_QUEUES],
        cwd=project_dir,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DeployError(f"app.py does not import:\n{result.stderr[-3000:]}")
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def deployed_resources(project_dir: Path, stage: str) -> list[dict[str, Any]]:
    """What chalice recorded it deployed (.chalice/deployed/<stage>.json)."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    resources: list[dict[str, Any]] = json.loads(path.read_text())["resources"]
    return resources


def queue_arns(sqs: Any, stack: Stack) -> dict[str, str]:
    """The stack's queues: logical id -> ARN."""
    arns = {}
    for logical_id, url in stack.resources.items():
        if stack.types[logical_id] == "AWS::SQS::Queue":
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            arns[logical_id] = attributes["Attributes"]["QueueArn"]
    return arns


def stream_mapping(stage: str, failures_queue_arn: str) -> dict[str, Any]:
    """The stage's stream mapping settings, in the Lambda API's shape (from stream_event_source)."""
    source = stream_event_source(operations.STAGES[stage].stream)
    settings = {k: v for k, v in source.items() if k not in FIXED_ON_CREATE}
    settings["DestinationConfig"] = {"OnFailure": {"Destination": failures_queue_arn}}
    return settings


def configure_event_sources(
    lambda_client: Any,
    sqs: Any,
    stack: Stack,
    stage: str,
    deployed: list[dict[str, Any]],
    *,
    patience: MappingPatience | None = None,
) -> list[dict[str, Any]]:
    """Set what chalice cannot on each mapping it made; refuse one not wired to this stage."""
    arns = queue_arns(sqs, stack)
    stage_queues = {
        arn for logical_id, arn in arns.items() if logical_id in QUEUE_OF_DECORATOR.values()
    }
    stream = stream_mapping(stage, arns["StreamFailuresQueue"])
    patience = patience or MappingPatience()
    mappings = []
    for resource in deployed:
        kind = resource["resource_type"]
        if kind == "sqs_event":
            if resource["queue_arn"] not in stage_queues:
                raise DeployError(
                    f"{resource['name']} listens to {resource['queue_arn']}, not one of the "
                    f"stack's queues: add its queue to infra.template.QUEUE_OF_DECORATOR"
                )
            settings = SQS_MAPPING
        elif kind == "dynamodb_event":
            if resource["stream_arn"] != stack.outputs["TableStreamArn"]:
                raise DeployError(
                    f"{resource['name']} reads {resource['stream_arn']}, not the table's stream"
                )
            settings = stream
        else:
            continue
        mappings.append(
            update_mapping(lambda_client, resource["event_uuid"], settings, patience=patience)
        )
    return mappings


def wait_until_settled(lambda_client: Any, uuid: str, patience: MappingPatience) -> None:
    """Poll the mapping until it is Enabled or Disabled; DeployError after `patience.polls`."""
    state = "unknown"
    for poll in range(patience.polls):
        state = str(lambda_client.get_event_source_mapping(UUID=uuid).get("State", ""))
        if state in MAPPING_SETTLED:
            return
        if poll + 1 < patience.polls:
            patience.sleep(patience.poll_s)
    raise DeployError(
        f"event source mapping {uuid} is still {state} after {patience.polls} polls "
        f"({patience.polls * patience.poll_s:.0f} s): run `make deploy` again once it is "
        "Enabled (aws lambda get-event-source-mapping --uuid " + uuid + ")"
    )


def update_mapping(
    lambda_client: Any, uuid: str, settings: dict[str, Any], *, patience: MappingPatience
) -> dict[str, Any]:
    """Update one mapping once it has settled, retrying what Lambda answers while it changes."""
    for attempt in range(patience.attempts):
        wait_until_settled(lambda_client, uuid, patience)
        try:
            return dict(lambda_client.update_event_source_mapping(UUID=uuid, **settings))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code not in MAPPING_RETRIED:
                raise DeployError(f"event source mapping {uuid}: {error}") from error
            if attempt + 1 == patience.attempts:
                raise DeployError(
                    f"event source mapping {uuid} could not be updated after "
                    f"{patience.attempts} attempts ({code}: {error}); if the on-failure "
                    "destination is refused, the function's role may not allow sqs:SendMessage "
                    "on it yet: run `make deploy` again in a minute"
                ) from error
            patience.sleep(patience.backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def configure_api(
    apigateway: Any, logs: Any, stage: str, deployed: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Name the REST API as its alarm expects, throttle its stage, set its log retention."""
    numbers = operations.STAGES[stage]
    names = operations.resource_names(stage)
    group = f"/aws/lambda/{names['functions']}"
    try:
        logs.create_log_group(logGroupName=group)
    except ClientError as error:
        if "ResourceAlreadyExists" not in str(error):
            raise
    logs.put_retention_policy(logGroupName=group, retentionInDays=numbers.log_retention_days)
    api = next((r for r in deployed if r["resource_type"] == "rest_api"), None)
    if api is None:
        return None
    rest_api_id = api["rest_api_id"]
    apigateway.update_rest_api(
        restApiId=rest_api_id,
        patchOperations=[{"op": "replace", "path": "/name", "value": names["api"]}],
    )
    settings = {
        "/*/*/throttling/rateLimit": str(numbers.throttle_rate),
        "/*/*/throttling/burstLimit": str(numbers.throttle_burst),
        "/*/*/metrics/enabled": "true",
    }
    apigateway.update_stage(
        restApiId=rest_api_id,
        stageName=operations.API_GATEWAY_STAGE,
        patchOperations=[{"op": "replace", "path": p, "value": v} for p, v in settings.items()],
    )
    return dict(apigateway.get_rest_api(restApiId=rest_api_id))


def summary(
    stack: Stack, deployed: list[dict[str, Any]], mappings: list[dict[str, Any]], lambda_client: Any
) -> str:
    """What exists now, for the terminal."""
    lines = [f"stack {stack.name}:"]
    lines += [f"  {key}: {value}" for key, value in sorted(stack.outputs.items())]
    lines.append("functions:")
    for resource in deployed:
        if resource["resource_type"] == "lambda_function":
            config = lambda_client.get_function_configuration(FunctionName=resource["lambda_arn"])
            lines.append(
                f"  {config['FunctionName']}: {config['Runtime']}, {config['MemorySize']} MB, "
                f"{config['Timeout']} s"
            )
    lines.append("event source mappings:")
    for mapping in mappings:
        function = mapping["FunctionArn"].rsplit(":", 1)[-1]
        lines.append(
            f"  {function} <- {mapping['EventSourceArn']} (batch {mapping['BatchSize']}, "
            f"{', '.join(mapping.get('FunctionResponseTypes', [])) or 'whole-batch retries'})"
        )
    for resource in deployed:
        if resource["resource_type"] == "rest_api":
            lines.append(f"API: {resource['rest_api_url']}")
    return "\n".join(lines)


def deploy(stage: str, project_dir: Path, chalice: Path, session: Any, *, delay_s: int = 10) -> str:
    """The whole path; returns the summary."""
    stack = deploy_stack(session.client("cloudformation"), stage, delay_s=delay_s)
    environment = chalice_environment(stack)
    unknown = app_queues(chalice, project_dir, environment) - set(environment.values())
    if unknown:
        raise DeployError(
            f"app.py's SQS handlers listen to {', '.join(sorted(unknown))}, which stack "
            f"{stack.name} does not provide: add each to infra.template.QUEUE_OF_DECORATOR "
            "(and its queue to infra_template)"
        )
    run_chalice(chalice, project_dir, stage, environment)
    deployed = deployed_resources(project_dir, stage)
    lambda_client = session.client("lambda")
    mappings = configure_event_sources(lambda_client, session.client("sqs"), stack, stage, deployed)
    configure_api(session.client("apigateway"), session.client("logs"), stage, deployed)
    return summary(stack, deployed, mappings, lambda_client)


def adopt_aws_region(environ: Any) -> None:
    """botocore reads only AWS_DEFAULT_REGION; AWS_REGION (what Lambda and the other SDKs read)
    is copied to it when it alone is set, for this process and the chalice it runs."""
    if environ.get("AWS_REGION") and not environ.get("AWS_DEFAULT_REGION"):
        environ["AWS_DEFAULT_REGION"] = environ["AWS_REGION"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument(
        "--chalice",
        type=Path,
        default=Path(sys.executable).parent / "chalice",
        help="the chalice executable (default: the one beside this Python)",
    )
    parser.add_argument(
        "--any-runtime",
        action="store_true",
        help=f"deploy even if chalice's Python is not {operations.LAMBDA_RUNTIME} (tests)",
    )
    args = parser.parse_args(argv)
    import boto3

    adopt_aws_region(os.environ)
    session = boto3.session.Session()
    if not session.region_name:
        print("infra.deploy: set AWS_REGION (or AWS_DEFAULT_REGION)", file=sys.stderr)
        return 2
    runtime = chalice_runtime(args.chalice)
    if runtime != operations.LAMBDA_RUNTIME and not args.any_runtime:
        print(
            f"infra.deploy: {args.chalice} runs under {runtime}, but the Lambda runtime is "
            f"{operations.LAMBDA_RUNTIME} (chalice deploys the Python it runs under): use "
            "`make deploy`, which builds .venv-deploy with it",
            file=sys.stderr,
        )
        return 2
    try:
        print(deploy(args.stage, args.project_dir.resolve(), args.chalice, session))
    except DeployError as error:
        print(f"infra.deploy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
