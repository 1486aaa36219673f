"""Fixtures for the deploy tests: one `make package` build shared by every xdist worker."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What chalice prints when it cannot fetch Lambda-platform wheels (no index reachable).
DOWNLOAD_FAILURES = (
    "Could not install dependencies",
    "Could not find a version",
    "ConnectionError",
)


@dataclass(frozen=True)
class Package:
    """The output of `make package`: the merged SAM template and the deployment zip."""

    directory: Path

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.json"

    @property
    def zip_path(self) -> Path:
        return self.directory / "deployment.zip"

    def template(self) -> dict[str, Any]:
        return dict(json.loads(self.template_path.read_text()))


def build_package(out: Path, stage: str = "dev") -> subprocess.CompletedProcess[str]:
    """What `make package` runs (minus cfn-lint, which the tests run themselves)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    merge = out / f"merge-{stage}.json"
    generate = [sys.executable, "-m", "infra.template", "merge", "--stage", stage]
    subprocess.run([*generate, "--output", str(merge)], cwd=ROOT, env=env, check=True)
    command = [str(BIN / "chalice"), "package", "--stage", stage, "--merge-template", str(merge)]
    return subprocess.run(
        [*command, str(out / "package")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Package]:
    """The dev package, built once per test run (xdist workers wait for the first one's build)."""
    # One directory for every xdist worker of this run (never a build of an earlier run)
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "deploy-package"
    with open(shared / "deploy-package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "package" / "sam.json"
        failure = out / "failure.txt"
        if not done.exists() and not failure.exists():
            out.mkdir(exist_ok=True)
            result = build_package(out)
            if result.returncode != 0:
                failure.write_text(result.stdout + result.stderr)
        if failure.exists():
            text = failure.read_text()
            if any(marker in text for marker in DOWNLOAD_FAILURES):
                pytest.skip(f"chalice package could not download Lambda wheels:\n{text[-2000:]}")
            pytest.fail(f"chalice package failed:\n{text[-4000:]}")
    yield Package(out / "package")
