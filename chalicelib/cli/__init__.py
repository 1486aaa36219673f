"""roomtemp's dev/ops command line: `python -m chalicelib.cli <command> ...` (not for Lambda)."""
