"""Operator command line: `python -m infra.cli <command> ...` (see README)."""
