"""Jobs of the engine: the bot turn."""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate
import structlog

from atende.engine.turn import Ports, hand_off_after_failure, run_turn
from atende.jobs.queue import RETRY
from atende.knowledge.retrieval import FullTextRetriever
from atende.llm.extractive import ExtractiveAnswerer
from atende.runtime import Runtime


def ports_for(runtime: Runtime) -> Ports:
    """The retriever and answerer of this deployment (one implementation of each today)."""
    return Ports(
        retriever=FullTextRetriever(),
        answerer=ExtractiveAnswerer(runtime.settings.evidence_threshold),
        top_k=runtime.settings.retrieval_top_k,
    )


async def run_turn_job(context: procrastinate.JobContext, company_id: str, message_id: str) -> Any:
    runtime: Runtime = context.additional_context["runtime"]
    company, message = uuid.UUID(company_id), uuid.UUID(message_id)
    with structlog.contextvars.bound_contextvars(company_id=company_id, message_id=message_id):
        try:
            return await run_turn(runtime, ports_for(runtime), company, message)
        except Exception as exc:
            # procrastinate retries while the previous attempts number less than max_attempts
            if context.job is not None and context.job.attempts >= (RETRY.max_attempts or 0):
                # the last try failed too: a person answers instead
                await hand_off_after_failure(runtime, company, message, f"{type(exc).__name__}: {exc}")
            raise


def blueprint() -> procrastinate.Blueprint:
    """The engine's tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="run_turn", retry=RETRY, pass_context=True)(run_turn_job)
    return bp
