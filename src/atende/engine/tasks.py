"""Jobs of the engine: the bot turn."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
import structlog
from purgatory import AsyncCircuitBreakerFactory

from atende import netguard
from atende.conversations import service as conversations
from atende.db.pubsub import publish
from atende.engine.turn import Ports, hand_off_after_failure, run_turn
from atende.jobs.queue import RETRY
from atende.knowledge import message_terms, ranker
from atende.knowledge.embedding import embedder_for
from atende.knowledge.rerank import RerankStep
from atende.knowledge.retrieval import FullTextRetriever, HybridRetriever, Retriever
from atende.llm.answerer import Answerer
from atende.llm.extractive import ExtractiveAnswerer
from atende.llm.grounded import LLMAnswerer
from atende.llm.rerank import LLMReranker
from atende.llm.rewrite import LLMRewriter
from atende.observability import events, metrics
from atende.observability.logging import describe
from atende.openai_compat import cached_client
from atende.runtime import LLM_CIRCUITS, LLM_CLIENTS, Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.crypto import decrypt_secret
from atende.tenancy.models import Company
from atende.tenancy.settings import EmbeddingsEndpoint, LLMEndpoint, Reranking, read_section
from atende.webhooks import service as webhooks

if TYPE_CHECKING:
    import openai

log = structlog.get_logger(__name__)
LLM_PRIVATE_SETTING = "ATENDE_LLM_ALLOW_PRIVATE_NETWORKS"


def _observe(outcome: str, seconds: float) -> None:
    metrics.LLM_REQUESTS.labels(outcome).inc()
    metrics.LLM_LATENCY.observe(seconds)


CIRCUIT_STATES = {"closed": 0, "half-opened": 1, "opened": 2}
CIRCUIT_WORDS = {
    "opened": "The LLM endpoint failed repeatedly: its circuit opened, answers fall back to the "
    "offline answerer.",
    "half-opened": "The LLM circuit lets one request through to test the endpoint again.",
    "closed": "The LLM endpoint answers again: its circuit closed.",
}


def llm_breakers(runtime: Runtime) -> AsyncCircuitBreakerFactory:
    """This process's circuit breakers, one per LLM endpoint (created once)."""
    factory = runtime.extras.get("llm_breakers")
    if not isinstance(factory, AsyncCircuitBreakerFactory):
        factory = runtime.extras["llm_breakers"] = AsyncCircuitBreakerFactory(
            default_threshold=runtime.settings.llm_breaker_failures,
            default_ttl=runtime.settings.llm_breaker_reset_seconds,
        )
        states: dict[str, str] = runtime.extras.setdefault(LLM_CIRCUITS, {})

        def on_circuit(name: str, event_type: str, event: Any) -> None:
            if event_type == "circuit_breaker_created":
                states.setdefault(name, "closed")
                metrics.LLM_CIRCUIT.labels(name).set(0)
            elif event_type == "state_changed":
                state = str(getattr(event, "state", "closed"))
                states[name] = state
                metrics.LLM_CIRCUIT.labels(name).set(CIRCUIT_STATES.get(state, 0))
                log.warning("llm.circuit", circuit=name, state=state)
                events.record_soon(
                    runtime,
                    events.LLM_CIRCUIT_CHANGED,
                    CIRCUIT_WORDS.get(state, f"The LLM circuit is {state}."),
                    # opened: answers fall back to the extractive answerer
                    level="error" if state == "opened" else "warning",
                    # a company's own endpoint is that company's; the deployment's, the platform's
                    company_id=name.removeprefix("company:") if name.startswith("company:") else None,
                    details={"circuit": name, "state": state},
                )

        factory.add_listener(on_circuit)
    return factory


def llm_endpoint(runtime: Runtime, company: Company | None) -> tuple[str, str, str, str] | None:
    """(circuit, base URL, model, API key) for ``company``: its own endpoint (its own circuit:
    a company's bad key or endpoint never opens anyone else's), else the deployment's."""
    own = read_section(company, LLMEndpoint) if company is not None else None
    if company is not None and own is not None and own.configured:
        key = decrypt_secret(runtime.secret_key, own.api_key) if own.api_key else ""
        return f"company:{company.id}", own.base_url, own.model, key
    settings = runtime.settings
    if settings.llm_base_url and settings.llm_model:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        return "default", settings.llm_base_url, settings.llm_model, key
    return None


def _client(runtime: Runtime, base_url: str, key: str, guard: netguard.Guard | None) -> openai.AsyncOpenAI:
    settings = runtime.settings
    return cached_client(
        runtime.extras.setdefault(LLM_CLIENTS, {}),
        base_url,
        key,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        guard=guard,
    )


@dataclass(frozen=True)
class LLMAccess:
    """How a company reaches its LLM: a client, the model, the endpoint's circuit, and, for a
    company's own endpoint, the check that its host is still public (``None``: the
    deployment's, chosen by the operator)."""

    client: openai.AsyncOpenAI
    model: str
    circuit: str
    precheck: Callable[[], Awaitable[None]] | None


def llm_access(runtime: Runtime, company: Company | None) -> LLMAccess | None:
    """The LLM of ``company`` (its own endpoint, else the deployment's), or None without one."""
    endpoint = llm_endpoint(runtime, company)
    if endpoint is None:
        return None
    circuit, base_url, model, key = endpoint
    own = circuit != "default"  # a company's endpoint: guarded; the deployment's is the operator's
    guard = netguard.Guard(runtime.settings.llm_allow_private_networks, "LLM", LLM_PRIVATE_SETTING)

    async def still_public() -> None:
        # a company's host may resolve elsewhere by now: refused here with a clear reason
        # in the log; the client's transport enforces it on the connection itself
        await netguard.check_public(
            base_url,
            allow_private=guard.allow_private,
            what=guard.what,
            setting=guard.setting,
        )

    client = _client(runtime, base_url, key, guard if own else None)
    return LLMAccess(client, model, circuit, still_public if own else None)


def ports_for(runtime: Runtime, company: Company | None = None) -> Ports:
    """The retriever and answerer for ``company``: the LLM one (extractive as its fallback)
    when an endpoint is configured for it or for the deployment, else the extractive one."""
    settings = runtime.settings
    extractive = ExtractiveAnswerer(
        settings.evidence_threshold,
        settings.evidence_thresholds,
        cross_lingual_evidence=settings.cross_lingual_evidence,
        rerank_threshold=settings.rerank_answer_threshold,
        long_rerank_threshold=settings.rerank_long_answer_threshold,
    )
    answerer: Answerer = extractive
    rewriter: LLMRewriter | None = None
    llm = llm_access(runtime, company)
    if llm is not None:
        answerer = LLMAnswerer(
            llm.client,
            llm.model,
            breakers=llm_breakers(runtime),
            circuit=llm.circuit,
            fallback=extractive,
            context_chars=settings.llm_context_chars,
            deadline=settings.llm_timeout_seconds * (settings.llm_max_retries + 1) + 2,
            observe=_observe,
            precheck=llm.precheck,
            stream=settings.llm_stream,
        )
        # the same client (its transport refuses a company host turned private) and circuit
        rewriter = LLMRewriter(
            llm.client,
            llm.model,
            breakers=llm_breakers(runtime),
            circuit=llm.circuit,
            deadline=settings.llm_rewrite_seconds,
        )
    return Ports(
        retriever=retriever_for(runtime, company, late=False),
        rerank_after=late_rerank_steps(runtime, company),
        answerer=answerer,
        top_k=runtime.settings.retrieval_top_k,
        questions=runtime.settings.questions_per_message,
        embedder=embedder_for(
            runtime, read_section(company, EmbeddingsEndpoint) if company is not None else None
        ),
        rewriter=rewriter,
    )


def rerank_steps(runtime: Runtime, company: Company | None, embedding_model: str) -> list[RerankStep]:
    """The re-ranking stages of ``company``'s retrieval: the default re-ranker over the best
    ``ATENDE_RERANK_CANDIDATES``, then, when the company asked for it and has an LLM, the LLM
    over the first ``ATENDE_RERANK_LLM_TOP``; none when the company turned re-ranking off."""
    chosen = read_section(company, Reranking)
    if not chosen.enabled:
        return []
    settings = runtime.settings
    steps = []
    first = ranker.default_reranker(settings, embedding_model)
    if first is not None:
        steps.append(RerankStep(first, settings.rerank_candidates, settings.rerank_budget_ms))
    llm = llm_access(runtime, company) if chosen.llm else None
    if llm is not None:
        timeout = settings.rerank_llm_timeout_seconds
        reranker = LLMReranker(
            llm.client,
            llm.model,
            breakers=llm_breakers(runtime),
            circuit=llm.circuit,
            timeout=timeout,
            precheck=llm.precheck,
        )
        # the stage's budget is the request's deadline and a little more: the reranker's own
        # deadline answers first, with its reason
        budget_ms = timeout * 1000 + 500
        steps.append(
            RerankStep(reranker, settings.rerank_llm_top, budget_ms, stage="llm_reranked", reads=False)
        )
    return steps


def retriever_for(runtime: Runtime, company: Company | None, *, late: bool = True) -> Retriever:
    """Hybrid (BM25 + dense, fused per language, then re-ranked: ``rerank_steps``) when an
    embedder is configured for the company or the deployment, else full-text. Without
    ``late``, the re-ranking stages that read no database (the LLM's) are left out: the
    turn runs them after its reading transaction (``late_rerank_steps``, ``Ports.rerank_after``)."""
    embedder = embedder_for(
        runtime, read_section(company, EmbeddingsEndpoint) if company is not None else None
    )
    if embedder is None:
        return FullTextRetriever()
    settings = runtime.settings
    steps = rerank_steps(runtime, company, embedder.model)
    return HybridRetriever(
        embedder,
        settings.fusion_dense_weights,
        candidates=settings.fusion_candidates,
        method=settings.fusion,
        query_chars=settings.embed_query_chars,
        rerank=[step for step in steps if late or step.reads],
    )


def late_rerank_steps(runtime: Runtime, company: Company | None) -> list[RerankStep]:
    """The re-ranking stages of ``company``'s hybrid retrieval that read no database (the
    LLM's), which ``retriever_for(..., late=False)`` leaves to the turn."""
    embedder = embedder_for(
        runtime, read_section(company, EmbeddingsEndpoint) if company is not None else None
    )
    if embedder is None:
        return []
    return [step for step in rerank_steps(runtime, company, embedder.model) if not step.reads]


async def run_turn_job(context: procrastinate.JobContext, company_id: str, message_id: str) -> Any:
    runtime: Runtime = context.additional_context["runtime"]
    company, message = uuid.UUID(company_id), uuid.UUID(message_id)
    with structlog.contextvars.bound_contextvars(company_id=company_id, message_id=message_id):
        try:
            async with runtime.db.transaction() as session:
                settings_of = await tenancy.get_company(session, company_id)
            # built with no transaction open: the first time, making the LLM's client takes a while
            ports = ports_for(runtime, settings_of)
            return await run_turn(runtime, ports, company, message)
        except Exception as exc:
            attempts = context.job.attempts if context.job is not None else 0
            log.warning("turn.attempt_failed", attempt=attempts + 1, exc_info=True)
            # procrastinate retries while the previous attempts number less than max_attempts
            if context.job is not None and attempts >= (RETRY.max_attempts or 0):
                # the last try failed too: a person answers instead. The reason is stored and
                # shown to the company's agents: one redacted line, never a statement's values
                await hand_off_after_failure(runtime, company, message, describe(exc))
            raise


async def announce_opening_job(context: procrastinate.JobContext, company_id: str) -> int:
    """The team has just opened: tell agents' screens (live) and the company's webhook how many
    tickets wait, oldest first in the queue."""
    runtime: Runtime = context.additional_context["runtime"]
    company = uuid.UUID(company_id)
    async with runtime.db.transaction(company) as session:
        waiting, tickets = await conversations.queue_size(session)
        data = {"waiting": waiting, "tickets": tickets}
        await publish(session, conversations.queue_topic(company), "opened", **data)
        await webhooks.emit(session, runtime.jobs, "queue.opened", data)
    log.info("queue.opened", company_id=company_id, **data)
    return tickets


async def learn_company_message_terms(
    runtime: Runtime, company_id: uuid.UUID, *, force: bool = False
) -> tuple[int, int] | None:
    """Rebuild the company's customer-message statistics from its latest conversations (they
    weigh a question's terms in retrieval, one vote per customer: ``knowledge.message_terms``);
    returns how many customers (contacts) and lexemes were counted, or None when no customer
    wrote since the last count (unless ``force``)."""
    async with runtime.db.transaction(company_id) as session:
        newest = await conversations.newest_customer_seq(session)
        if not force and newest == await message_terms.counted_up_to(session):
            return None
        latest = await conversations.recent_customer_texts(
            session,
            conversations=message_terms.SAMPLE_CONVERSATIONS,
            per_conversation=message_terms.PER_CONVERSATION,
        )
        by_contact: dict[uuid.UUID, list[str]] = {}
        for contact, body in latest:
            by_contact.setdefault(contact, []).append(body)
        lexemes = await message_terms.learn(session, list(by_contact.values()), newest_seq=newest)
    log.info(
        "message_terms.learned",
        company_id=str(company_id),
        contacts=len(by_contact),
        messages=len(latest),
        lexemes=lexemes,
    )
    return len(by_contact), lexemes


async def learn_message_terms(runtime: Runtime) -> int:
    """Every company's customer-message statistics, rebuilt where customers wrote since the
    last count; returns how many companies were counted. A company that fails is logged and
    skipped."""
    async with runtime.db.transaction() as session:
        companies = [c.id for c in await tenancy.list_companies(session)]
    done = 0
    for company_id in companies:
        try:
            counted = await learn_company_message_terms(runtime, company_id)
        except Exception as exc:
            log.warning("message_terms.failed", company_id=str(company_id), error=describe(exc))
            continue
        done += counted is not None
    return done


async def learn_message_terms_job(context: procrastinate.JobContext, timestamp: int) -> int:
    return await learn_message_terms(context.additional_context["runtime"])


def blueprint() -> procrastinate.Blueprint:
    """The engine's tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="run_turn", retry=RETRY, pass_context=True)(run_turn_job)
    bp.task(name="announce_opening", retry=RETRY, pass_context=True)(announce_opening_job)
    # one run at a time (lock), and at most one waiting (queueing_lock)
    name = "learn_message_terms"
    learn = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(learn_message_terms_job)
    bp.periodic(cron="41 * * * *")(learn)  # hourly
    return bp
