"""Entry point: builds one argparse parser from the subcommand modules listed in COMMANDS."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes register(subparsers) and sets `func` on its parsers.
COMMANDS = ["infra.cli.keys", "infra.cli.transfer", "infra.cli.simulate"]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command of COMMANDS."""
    parser = argparse.ArgumentParser(prog="python -m infra.cli", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
