"""Builds the command line from its subcommand modules; each exposes `register(subparsers)`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.cli import transfer

COMMANDS = [transfer]


def parser() -> argparse.ArgumentParser:
    """The parser with every subcommand registered."""
    root = argparse.ArgumentParser(prog="python -m chalicelib.cli")
    subparsers = root.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command; its return value is the exit status."""
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
