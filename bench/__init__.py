"""Benchmarks for `make bench`: each module in bench.run.BENCHMARKS measures a few figures.

Never part of `make test` (pytest collects only tests/).
"""
