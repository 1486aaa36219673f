"""What `make package` shipped: the deployment zip's size and file count, and that it holds only
what runs in Lambda (no tests, fakes, CLI, infra or benchmarks).

    python -m infra.package build/deployment.zip
    python -m infra.package build/deployment.zip --template build/sam.json --runtime python3.13

With --runtime, also that every function in the template has that Lambda runtime and that every
binary module in the zip was built for its Python (chalice picks both from the Python it runs
under, so a package built under another Python would fail to import on Lambda).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
# Never part of the Lambda: development, operations and test code.
NOT_SHIPPED = ("tests", "infra", "bench", "docs", ".chalice", ".venv")


@dataclass(frozen=True)
class Summary:
    """The zip's figures."""

    zipped_bytes: int
    unzipped_bytes: int
    files: int
    by_top_level: dict[str, int]  # files per top-level entry

    @property
    def unexpected(self) -> list[str]:
        """Top-level entries that should not be in a Lambda package."""
        return sorted(name for name in self.by_top_level if name in NOT_SHIPPED)

    def text(self) -> str:
        """The lines `make package` prints."""
        biggest = sorted(self.by_top_level.items(), key=lambda kv: -kv[1])[:8]
        return "\n".join(
            [
                f"deployment.zip: {self.zipped_bytes / MB:.1f} MB zipped, "
                f"{self.unzipped_bytes / MB:.1f} MB unzipped, {self.files} files",
                "  most files: " + ", ".join(f"{name} {count}" for name, count in biggest),
            ]
        )


def summarize(path: Path) -> Summary:
    """The figures of the zip at `path`."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
    return Summary(
        zipped_bytes=path.stat().st_size,
        unzipped_bytes=sum(i.file_size for i in infos),
        files=len(infos),
        by_top_level=dict(Counter(i.filename.split("/")[0] for i in infos)),
    )


FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# A CPython extension module's ABI tag: pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so
EXTENSION_ABI = re.compile(r"\.cpython-(\d+)-[^/]*\.so$")


def runtime_problems(template: dict[str, object], zip_path: Path, runtime: str) -> list[str]:
    """Why the package would not run on `runtime` (e.g. python3.13); empty if it would."""
    resources = template.get("Resources", {})
    globals_ = template.get("Globals", {})
    default = globals_.get("Function", {}).get("Runtime") if isinstance(globals_, dict) else None
    problems = []
    for logical_id, resource in resources.items() if isinstance(resources, dict) else []:
        if resource.get("Type") in FUNCTION_TYPES:
            found = resource.get("Properties", {}).get("Runtime", default)
            if found != runtime:
                problems.append(f"function {logical_id} has Runtime {found}, not {runtime}")
    abi = runtime.removeprefix("python").replace(".", "")
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            match = EXTENSION_ABI.search(name)
            if match and match.group(1) != abi:
                problems.append(f"{name} is built for CPython {match.group(1)}, not {runtime}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("zip", type=Path)
    parser.add_argument("--template", type=Path, help="the packaged template (sam.json)")
    parser.add_argument("--runtime", help="the Lambda runtime every function must have")
    args = parser.parse_args(argv)
    summary = summarize(args.zip)
    print(summary.text())
    if summary.unexpected:
        print(f"not for Lambda: {', '.join(summary.unexpected)}", file=sys.stderr)
        return 1
    if args.runtime:
        template = json.loads(args.template.read_text()) if args.template else {}
        problems = runtime_problems(template, args.zip, args.runtime)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"runtime: {args.runtime} (every function and binary module)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
