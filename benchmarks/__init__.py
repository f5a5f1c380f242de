"""Benchmarks: each prints a table, then RESULT lines."""
