"""One loopback webhook receiver per test module; each endpoint gets its own path on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server
