"""Benchmarks: `python bench/run.py [--quick] [--only NAME]` (see bench/run.py)."""
