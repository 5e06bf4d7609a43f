"""The port through which the domains hand a committed outbound message to its channel.

``conversations`` and ``engine`` import no channel; ``atende.bootstrap`` puts the channels'
``deliver`` in the runtime (``Runtime.extras[DELIVER]``), and a writer of a reply calls
``hand_over`` once its transaction has committed. The outbox will replace this direct call
with a durable delivery job (queued in the reply's own transaction, retried); until then a
failed delivery is logged and not retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog

from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

DELIVER = "deliver"  # key of ``Runtime.extras``
# (runtime, company, the conversation's channel, the message) -> the provider's message id
Deliver = Callable[[Runtime, uuid.UUID, str, uuid.UUID], Awaitable[str | None]]


async def hand_over(runtime: Runtime, company_id: uuid.UUID, channel: str, message_id: uuid.UUID) -> None:
    """Deliver a committed message through its channel; a failure is logged, never raised (the
    message is stored and shown everywhere else; the caller's work is done)."""
    deliver: Deliver | None = runtime.extras.get(DELIVER)
    if deliver is None:
        return
    try:
        await deliver(runtime, company_id, channel, message_id)
    except Exception as exc:
        log.warning(
            "delivery.failed", channel=channel, message_id=str(message_id), error=describe(exc), exc_info=True
        )
