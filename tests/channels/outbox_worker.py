"""``python -m tests.channels.outbox_worker worker --name N``: ``atende worker`` with the
tests' ``LoopbackChannel`` registered, for the outbox's crash test (a channel is registered
in the process that delivers: a worker subprocess must know it too)."""

from __future__ import annotations

from atende.channels import registry
from atende.cli import app
from tests.channels.loopback_channel import LoopbackChannel

registry.register(LoopbackChannel())

if __name__ == "__main__":
    app()
