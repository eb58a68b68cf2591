"""Benchmarks: scripts that measure and print a table; run them as `python bench/NAME.py`."""
