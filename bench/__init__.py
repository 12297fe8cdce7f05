"""Benchmarks for tamizdat (see bench/README.md); run them with ``python -m bench.run``."""
