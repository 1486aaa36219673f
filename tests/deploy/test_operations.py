"""Every operational number is stated once (infra/operations.py): the Chalice config, the deploy
template, the docs and the runtime settings agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.settings_model import Settings
from infra import operations
from infra.template import CHALICE_CONFIG, DOCS, infra_template, with_numbers_table

ROOT = Path(__file__).resolve().parents[2]


def test_the_chalice_config_is_the_one_generated_from_operations() -> None:
    committed = json.loads(CHALICE_CONFIG.read_text())
    assert committed == operations.chalice_config(), "run: python -m infra.template config"


def test_the_docs_table_is_the_one_generated_from_operations() -> None:
    page = DOCS.read_text()
    assert with_numbers_table(page) == page, "run: python -m infra.template docs"


@pytest.mark.parametrize("stage", list(operations.STAGES))
def test_each_queue_outlasts_its_consumer_six_times_over(stage: str) -> None:
    config = json.loads(CHALICE_CONFIG.read_text())["stages"][stage]["lambda_functions"]
    resources = infra_template(stage)["Resources"]
    for handler, queue in (("ingest", "IngestQueue"), ("compute_report", "ReportsQueue")):
        visibility = resources[queue]["Properties"]["VisibilityTimeout"]
        assert visibility == 6 * config[handler]["lambda_timeout"], (handler, visibility)


@pytest.mark.parametrize("stage", list(operations.STAGES))
def test_requests_give_up_before_api_gateway_does(stage: str) -> None:
    numbers = operations.STAGES[stage]
    # The deadline, plus one last call (2 s to connect, 10 s to read), stays under 29 s
    assert numbers.api_deadline_s + 2 + 10 < 29 <= numbers.api.timeout_s


def test_every_setting_is_documented_with_its_default() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    rows = dict(re.findall(r"^\| `ROOMTEMP_([A-Z_]+)` \| ([^|]+) \|", text, flags=re.M))
    for name, field in Settings.model_fields.items():
        documented = rows.get(name.upper())
        assert documented is not None, f"ROOMTEMP_{name.upper()} is not in docs/operations.md"
        default = field.default
        if default not in ("", 0):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown in documented, (name, default, documented)
