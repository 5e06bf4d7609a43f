"""Benchmarks of atende, run as modules from the project root: ``python -m benchmarks.NAME``."""
