"""The channels' jobs. The outbox's: one outbound message delivered through its conversation's
channel (``atende.channels.delivery.deliver``), queued by ``conversations.service.add_reply``
in the transaction that stores the message, one at a time per conversation (its ``lock``).
WhatsApp's: a customer's media file fetched into the media store
(``atende.channels.whatsapp.media``), queued by the webhook with the message."""

from __future__ import annotations

import uuid

import procrastinate

from atende.channels.delivery import deliver
from atende.channels.whatsapp import media as whatsapp_media
from atende.conversations import service as conversations
from atende.jobs.queue import RETRY
from atende.runtime import Runtime


async def deliver_message(context: procrastinate.JobContext, company_id: str, message_id: str) -> str:
    runtime: Runtime = context.additional_context["runtime"]
    assert context.job is not None
    # procrastinate retries while the previous attempts number less than max_attempts
    last_attempt = context.job.attempts >= (RETRY.max_attempts or 0)
    return await deliver(runtime, uuid.UUID(company_id), uuid.UUID(message_id), last_attempt=last_attempt)


async def fetch_whatsapp_media(context: procrastinate.JobContext, company_id: str, message_id: str) -> str:
    runtime: Runtime = context.additional_context["runtime"]
    assert context.job is not None
    last_attempt = context.job.attempts >= (RETRY.max_attempts or 0)
    return await whatsapp_media.fetch_into_store(
        runtime, uuid.UUID(company_id), uuid.UUID(message_id), last_attempt=last_attempt
    )


async def purge_pending_statuses(context: procrastinate.JobContext, timestamp: int) -> int:
    """Forget status updates that never met their message (``PENDING_STATUS_TTL``)."""
    runtime: Runtime = context.additional_context["runtime"]
    async with runtime.db.transaction() as session:
        return await conversations.purge_pending_statuses(session)


def blueprint() -> procrastinate.Blueprint:
    """Channel tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="deliver_message", retry=RETRY, pass_context=True)(deliver_message)
    bp.task(name="fetch_whatsapp_media", retry=RETRY, pass_context=True)(fetch_whatsapp_media)
    purge = bp.task(name="purge_pending_statuses", queueing_lock="purge_pending_statuses", pass_context=True)(
        purge_pending_statuses
    )
    bp.periodic(cron="29 * * * *")(purge)  # hourly
    return bp
