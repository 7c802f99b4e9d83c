"""Benchmarks and quality checks: runners per runtime, protocols and metrics."""
