"""Durable jobs in PostgreSQL (procrastinate): enqueue in the caller's transaction, workers,
retries with backoff, dead letters and periodic schedules."""
