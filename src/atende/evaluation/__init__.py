"""Measuring the agent: retrieval and answer quality on QA sets (``atende eval``)."""
