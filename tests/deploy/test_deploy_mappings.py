"""`make deploy`'s steps that only real AWS shows: event source mappings that are still changing
when `chalice deploy` returns, and the region variable. botocore's Stubber plays Lambda's answers
(moto's mappings are Enabled at once and never busy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra import deploy, operations
from infra.deploy import DeployError, MappingPatience, update_mapping

UUID = "6d9a3a8e-0000-4000-8000-000000000001"
SETTINGS = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
ANSWER = {"UUID": UUID, "State": "Updating", "FunctionResponseTypes": ["ReportBatchItemFailures"]}


def stubbed_lambda() -> tuple[Any, Stubber]:
    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    return client, Stubber(client)


class Pauses:
    """The patience of a test: no real sleep, every pause recorded."""

    def __init__(self, **bounds: int) -> None:
        self.slept: list[float] = []
        self.patience = MappingPatience(poll_s=5, backoff_s=5, sleep=self.slept.append, **bounds)


def state(name: str) -> dict[str, Any]:
    return {"UUID": UUID, "State": name}


def test_a_mapping_still_creating_is_updated_once_it_is_enabled() -> None:
    client, stubber = stubbed_lambda()
    stubber.add_response("get_event_source_mapping", state("Creating"), {"UUID": UUID})
    stubber.add_response("get_event_source_mapping", state("Creating"), {"UUID": UUID})
    stubber.add_response("get_event_source_mapping", state("Enabled"), {"UUID": UUID})
    stubber.add_response("update_event_source_mapping", ANSWER, {"UUID": UUID, **SETTINGS})
    pauses = Pauses()

    with stubber:
        answer = update_mapping(client, UUID, SETTINGS, patience=pauses.patience)

    assert answer["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert pauses.slept == [5, 5]  # two polls waited; the update was sent once, when Enabled
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["ResourceInUseException", "InvalidParameterValueException"])
def test_an_update_refused_while_the_mapping_changes_is_retried_with_backoff(code: str) -> None:
    client, stubber = stubbed_lambda()
    for _ in range(2):
        stubber.add_response("get_event_source_mapping", state("Enabled"))
        stubber.add_client_error("update_event_source_mapping", code, "busy or not yet allowed")
    stubber.add_response("get_event_source_mapping", state("Enabled"))
    stubber.add_response("update_event_source_mapping", ANSWER)
    pauses = Pauses()

    with stubber:
        answer = update_mapping(client, UUID, SETTINGS, patience=pauses.patience)

    assert answer["UUID"] == UUID
    assert pauses.slept == [5, 10]
    stubber.assert_no_pending_responses()


def test_an_update_still_refused_after_the_bound_stops_the_deploy_with_what_to_do() -> None:
    client, stubber = stubbed_lambda()
    for _ in range(3):
        stubber.add_response("get_event_source_mapping", state("Enabled"))
        stubber.add_client_error("update_event_source_mapping", "ResourceInUseException", "busy")
    pauses = Pauses(attempts=3)

    with stubber, pytest.raises(DeployError) as failure:
        update_mapping(client, UUID, SETTINGS, patience=pauses.patience)

    assert "after 3 attempts" in str(failure.value) and "make deploy" in str(failure.value)
    assert pauses.slept == [5, 10]
    stubber.assert_no_pending_responses()


def test_a_mapping_that_never_settles_stops_the_deploy_without_updating_it() -> None:
    client, stubber = stubbed_lambda()
    for _ in range(4):
        stubber.add_response("get_event_source_mapping", state("Updating"))
    pauses = Pauses(polls=4)

    with stubber, pytest.raises(DeployError, match="still Updating after 4 polls"):
        update_mapping(client, UUID, SETTINGS, patience=pauses.patience)

    assert pauses.slept == [5, 5, 5]
    stubber.assert_no_pending_responses()  # no update_event_source_mapping was sent


def test_other_lambda_errors_stop_the_deploy_at_once() -> None:
    client, stubber = stubbed_lambda()
    stubber.add_response("get_event_source_mapping", state("Enabled"))
    stubber.add_client_error("update_event_source_mapping", "AccessDeniedException", "no")
    pauses = Pauses()

    with stubber, pytest.raises(DeployError, match="AccessDenied"):
        update_mapping(client, UUID, SETTINGS, patience=pauses.patience)

    assert pauses.slept == []


@pytest.mark.parametrize(
    ("variables", "region"),
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1"),
    ],
)
def test_the_deploy_goes_to_the_region_of_aws_region_or_aws_default_region(
    variables: dict[str, str],
    region: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given a profile whose region is another one
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\n")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.setenv(name, "")  # recorded, so main's copy is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}

    def deployed(stage: str, project_dir: Path, chalice: Path, session: Any) -> str:
        seen["session"] = session.region_name
        seen["chalice"] = os.environ.get("AWS_DEFAULT_REGION")  # what `chalice deploy` inherits
        return "done"

    monkeypatch.setattr(deploy, "deploy", deployed)
    monkeypatch.setattr(deploy, "chalice_runtime", lambda chalice: operations.LAMBDA_RUNTIME)

    # When make deploy runs
    assert deploy.main(["--stage", "dev"]) == 0

    # Then the stack and chalice both go to that region, not the profile's
    assert seen == {"session": region, "chalice": region}
