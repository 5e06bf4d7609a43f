"""Logging, Prometheus metrics and health checks."""
