"""Operator command line: `python -m chalicelib.cli <command> ...` (see README)."""
