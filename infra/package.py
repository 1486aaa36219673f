"""What `make package` shipped: the deployment zip's size and file count, and that it holds only
what runs in Lambda (no tests, fakes, CLI, infra or benchmarks).

    python -m infra.package build/deployment.zip
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("zip", type=Path)
    summary = summarize(parser.parse_args(argv).zip)
    print(summary.text())
    if summary.unexpected:
        print(f"not for Lambda: {', '.join(summary.unexpected)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
