"""Prometheus metrics atende exports on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

HTTP_REQUESTS = Counter("atende_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_LATENCY = Histogram("atende_http_request_duration_seconds", "HTTP request latency", ["method", "route"])
TURNS = Counter("atende_turns_total", "Bot turns run", ["decision"])
HANDOFFS = Counter(
    "atende_handoffs_total",
    "Conversations the bot handed to people, by reason (requested, rule, repeat, evidence, failure) and "
    "routing (queue: answered soon; ticket: the team is closed or nobody is online)",
    ["reason", "routing"],
)
TURN_LATENCY = Histogram(
    "atende_turn_duration_seconds",
    "Bot turn latency, from start of the job to the reply stored",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIEVAL_LATENCY = Histogram(
    "atende_retrieval_duration_seconds",
    "Retrieval latency per turn",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
MESSAGES_RECEIVED = Counter("atende_messages_received_total", "Customer messages stored", ["channel"])
JOB_QUEUE_DEPTH = Gauge("atende_job_queue_depth", "Jobs waiting to run")
JOB_QUEUE_AGE = Gauge("atende_job_queue_oldest_age_seconds", "Age of the oldest waiting job")
MESSAGE_DELIVERIES = Counter(
    "atende_message_deliveries_total",
    "Outbound messages of push channels (WhatsApp, e-mail) reaching a delivery status (sent, "
    "delivered, read, failed), by channel: once per status a message reaches, when the change "
    "commits (a live channel's message, web chat or API, is stored sent and not counted)",
    ["channel", "status"],
)
ANSWER_RATINGS = Counter(
    "atende_answer_ratings_total",
    "Customers' ratings of the bot's answers (thumbs), by channel and rating (helpful, "
    "not_helpful): a new rating or a changed one, when it commits",
    ["channel", "rating"],
)
CSAT_SURVEYS_SENT = Counter(
    "atende_csat_surveys_sent_total",
    "CSAT surveys sent after a resolution, by channel (webchat, whatsapp, email, api), when the "
    "survey commits",
    ["channel"],
)
CSAT_RESPONSES = Counter(
    "atende_csat_responses_total",
    "Customers' first answers to CSAT surveys, by the survey's channel and rating (satisfied: "
    "a score of 4 or 5, neutral: 3, unsatisfied: 1 or 2), when the answer commits; a changed "
    "answer is not counted again",
    ["channel", "rating"],
)
SLA_EVENTS = Counter(
    "atende_sla_events_total",
    "SLA warnings and breaches the SLA job raised, by kind (warning, breached) and target "
    "(first_response, next_response, resolution), when the job's transaction commits",
    ["kind", "target"],
)
WEBHOOK_DELIVERIES = Counter(
    "atende_webhook_deliveries_total", "Outbound webhook delivery attempts", ["outcome"]
)
LLM_REQUESTS = Counter(
    "atende_llm_requests_total",
    "LLM answer requests by outcome (answered, no_answer, guard_failed; errors: timeout, rate_limited, "
    "connection, misconfigured, malformed, error, circuit_open)",
    ["outcome"],
)
LLM_LATENCY = Histogram(
    "atende_llm_request_duration_seconds",
    "LLM request latency (retries included)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
LLM_CIRCUIT = Gauge("atende_llm_circuit_state", "LLM circuit: 0 closed, 1 half-open, 2 open", ["circuit"])
CREDENTIALS = Gauge(
    "atende_credentials",
    "External credentials configured (companies' and the deployment's), by kind",
    ["kind"],
)
CREDENTIALS_FAILING = Gauge(
    "atende_credentials_failing",
    "External credentials whose last check failed, by kind (/health/ready names the companies)",
    ["kind"],
)


def count_on_commit(session: AsyncSession, counter: Counter, *labels: str, amount: int = 1) -> None:
    """Count ``amount`` (one unless told) for ``counter`` (with ``labels``) once ``session``'s
    transaction commits: a change that is rolled back, or retried by its job, is not counted
    twice."""

    def count(_session: object) -> None:
        counter.labels(*labels).inc(amount)

    event.listen(session.sync_session, "after_commit", count, once=True)


def csat_rating(score: int) -> str:
    """A CSAT score (1-5) as ``atende_csat_responses_total``'s rating: satisfied (4, 5),
    neutral (3) or unsatisfied (1, 2)."""
    if score >= 4:
        return "satisfied"
    return "neutral" if score == 3 else "unsatisfied"
