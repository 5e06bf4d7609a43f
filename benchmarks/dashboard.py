"""The inbox at scale: every view and filter of the conversation list, its counts, a second
page and a conversation's thread, over a company of 100,000 conversations (40,000 open) and
1,000,000 messages, beside a second company (isolation).

The data is written by PostgreSQL itself (``generate_series`` and ``INSERT … SELECT``, the
texts sent once with ``COPY``): conversations in every state spread over a year, the open ones
over the last week, with teams, assignees, labels (a few common, most rare), languages and
channels; each message a real text in its conversation's language (customers: the data sets'
questions, some with an order number; bot and agents: sentences of the passages). Read-only
public data (``../shared/data`` or ``--data-dir``; see its README): MilkQA (NILC/USP, arXiv
1801.03460; pt-BR e-mails to Embrapa's customer service, research data used for measurement
only), FaQuAD (liafacom/faquad, CC BY 4.0) and XQuAD (google-deepmind/xquad, CC BY-SA 4.0); the
sample in ``tests/data`` serves too.

Each case is timed ``--repeat`` times, after one untimed run: through the service functions
(``teams.inbox.list_inbox`` / ``count_views``, the conversation view's reads) in this process,
and through the HTTP API of a real ``atende serve`` on 127.0.0.1 (request to last byte, one
client); then the dashboard's pages through the same server, signed in as the agent whose
views are measured (``/app/inbox``: each view, a filter, searches, with every count and the
filters' choices; ``/app/conversations/{id}``: the whole page). Target: p95 under 300 ms for
each. Then live updates (``GET /app/live``, Server-Sent Events) through the same server: N
screens on one conversation and N on the inbox, signed in as the company's agents, and for a
customer's message (the API channel), a note, resolve and reopen (the page's forms) the time
from the request's start to each screen hearing its event (``--fanout 1,25,100``). And the
settings pages, signed in as the company's admin, the busiest webhook's delivery log holding
``--deliveries`` (50,000) deliveries with their attempts (its first page and one halfway down).
And the audit log's page over ``--audit-events`` (200,000) rows: its first page, an
action, an area, a person, the last week, a page halfway down. And the analytics page over 90
days (and 30, and each filter; a chart's CSV), once the first ``analytics:refresh`` has
measured every conversation (its time is among the fill's); the fill gives the conversations
with people their handoffs, an agent's answer and their resolution, their SLA targets (a
quarter breached) and half the resolutions a CSAT survey (40 % answered). And the logs viewer's
events page over ``--events`` (200,000) application events (newest, by level, by kind, by
words common and rare, by conversation, the last 24 hours).
``--quick`` is a small run for development.

Run from the project root: ``.venv/bin/python -m benchmarks.dashboard --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from atende.analytics import rollup
from atende.conversations import labels as label_service
from atende.conversations import service as conversations
from atende.db import migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.teams import inbox
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Membership, Role, User
from atende.tenancy.service import Principal
from atende.webhooks import service as webhooks
from benchmarks.common import (
    QUESTION_FILES,
    add_data_dir_argument,
    console,
    free_port,
    machine,
    ms,
    read_jsonl,
    require_data,
    result_table,
    run_on_postgres,
    summarise,
)
from benchmarks.intake import atende_command, server

TARGET_P95_MS = 300.0
CHANNELS = ("webchat", "api", "whatsapp", "email")
FIRST_NAMES = (
    "Ana Bruno Carla Diego Eduarda Felipe Gabriela Heitor Isabela João Karina Lucas Mariana Nicolás "
    "Olívia Paulo Quitéria Rafael Sofía Tiago Úrsula Valentina William Ximena Yara Zé Emily Jack "
    "Lucía Mateo Camila Santiago Grace Oliver Beatriz Caio Débora Enzo Fernanda Gustavo"
).split()
LAST_NAMES = (
    "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins "
    "Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa García Martínez López González Pérez "
    "Sánchez Romero Smith Johnson Brown Taylor Wilson Conceição Araújo Gonçalves"
).split()
# the data sets' files, by what they give: customers' questions, and answers' passages
TEXT_FILES = (
    ("support/pt.questions.jsonl", "question", "question"),
    ("retrieval/pt.questions.jsonl", "question", "question"),
    ("retrieval/en.questions.jsonl", "question", "question"),
    ("retrieval/es.questions.jsonl", "question", "question"),
    ("support/pt.passages.jsonl", "answer", "text"),
    ("retrieval/pt.passages.jsonl", "answer", "text"),
    ("retrieval/en.passages.jsonl", "answer", "text"),
    ("retrieval/es.passages.jsonl", "answer", "text"),
)
ANSWER_CHARS = 400
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Sizes:
    conversations: int
    open: int
    messages: int
    agents: int
    teams: int
    labels: int


@dataclass
class Company:
    """A benchmark company: its keys, the agent whose views are measured, its names."""

    id: uuid.UUID
    slug: str
    admin_key: str
    agent_key: str
    agent_id: uuid.UUID
    agent_ids: list[uuid.UUID]
    agent_emails: list[str]
    team_ids: list[uuid.UUID]
    team_slugs: list[str]
    label_ids: list[uuid.UUID]
    label_names: list[str]
    agent_password: str = ""  # agent 0's: the dashboard's pages are measured signed in as them
    admin_email: str = ""  # an admin with the same password: the settings pages are measured as them
    webhook_ids: list[uuid.UUID] = field(default_factory=list)  # the busiest first
    fill_seconds: dict[str, float] = field(default_factory=dict)


def read_texts(data_dir: Path) -> list[tuple[str, str, str]]:
    """``(kind, language, text)``: the data sets' questions (what customers write) and their
    passages cut into pieces of a few sentences (what the bot and agents answer)."""
    texts: list[tuple[str, str, str]] = []
    for name, kind, key in TEXT_FILES:
        path = data_dir / name
        if not path.is_file():
            continue
        for row in read_jsonl(path):
            body = " ".join(row[key].split())
            if not body:
                continue
            if kind == "question":
                texts.append((kind, row["language"], body[:4000]))
                continue
            piece = ""
            for sentence in _SENTENCES.split(body):
                if piece and len(piece) + len(sentence) > ANSWER_CHARS:
                    texts.append((kind, row["language"], piece))
                    piece = ""
                piece = f"{piece} {sentence}".strip()
            if piece:
                texts.append((kind, row["language"], piece[:4000]))
    return texts


def person_name(i: int) -> str:
    return f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[i // len(FIRST_NAMES) % len(LAST_NAMES)]}"


async def create_company(db: Database, secret_key: str, label: str, sizes: Sizes) -> Company:
    """A company with agents (one with a personal key), teams and labels, made through the
    services as the API would; the conversations are ``fill``'s."""
    slug = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
        _key, admin_key = await tenancy.create_api_key(
            session, secret_key=secret_key, company_id=company.id, name="dashboard benchmark", role=Role.admin
        )
        emails = [f"agent{i}@{slug}.example" for i in range(sizes.agents)]
        password = secrets.token_urlsafe(12)
        first = await tenancy.create_user(
            session,
            company_id=company.id,
            email=emails[0],
            password=password,
            role=Role.agent,
            name=person_name(0),
        )
        # the others as the service would make them, without hashing a password each (0.9 s):
        # they never sign in
        users = [first]
        for i, email in enumerate(emails[1:], start=1):
            user = User(email=email, name=person_name(i), password_hash=first.password_hash)
            session.add(user)
            await session.flush()
            session.add(Membership(company_id=company.id, user_id=user.id, role=Role.agent.value))
            users.append(user)
        # an admin (the settings pages are theirs), signing in with the same password
        admin = User(email=f"admin@{slug}.example", name="Admin Bench", password_hash=first.password_hash)
        session.add(admin)
        await session.flush()
        session.add(Membership(company_id=company.id, user_id=admin.id, role=Role.admin.value))
        await session.flush()
        for name in ("ERP", "Loja virtual", "Relatórios"):  # what the API keys page lists
            await tenancy.create_api_key(
                session, secret_key=secret_key, company_id=company.id, name=name, role=Role.admin
            )
        _key, agent_key = await tenancy.create_api_key(
            session,
            secret_key=secret_key,
            company_id=company.id,
            name="agent 0",
            role=Role.agent,
            user_email=emails[0],
        )
    async with db.transaction(company.id) as session:
        team_rows = []
        for t in range(sizes.teams):
            # agent 0, whose views are measured, is in the first two teams
            members = [u.id for i, u in enumerate(users) if i % sizes.teams == t or (i == 0 and t < 2)]
            team, _members = await teams.put_team(
                session, None, name=f"Time {t + 1}", slug=f"time-{t + 1}", hours=None, members=members
            )
            team_rows.append(team)
        label_rows = [
            await label_service.create_label(session, name=f"etiqueta-{n + 1}") for n in range(sizes.labels)
        ]
        # the webhooks the settings pages list; their deliveries are ``fill_deliveries``'
        endpoints = [
            (
                await webhooks.create_endpoint(
                    session,
                    secret_key=secret_key,
                    url=f"https://{host}.{slug}.example/atende/webhook",
                    events=events,
                    allow_private=True,  # never called: no name to resolve
                )
            )[0]
            for host, events in (
                ("erp", list(webhooks.EVENTS)),
                ("crm", ["conversation.state_changed", "conversation.handoff"]),
            )
        ]
    return Company(
        id=company.id,
        slug=slug,
        admin_key=admin_key,
        agent_key=agent_key,
        agent_id=users[0].id,
        agent_ids=[u.id for u in users],
        agent_emails=emails,
        team_ids=[t.id for t in team_rows],
        team_slugs=[t.slug for t in team_rows],
        label_ids=[label.id for label in label_rows],
        label_names=[label.name for label in label_rows],
        agent_password=password,
        admin_email=f"admin@{slug}.example",
        webhook_ids=[e.id for e in endpoints],
    )


FILL_CONVERSATIONS = """
CREATE TEMP TABLE bench_conversations (
    i int PRIMARY KEY, id uuid, contact_id uuid, channel text, language text, state text,
    updated_at timestamptz
);
INSERT INTO bench_conversations
SELECT i, gen_random_uuid() AS id, gen_random_uuid() AS contact_id,
       (%(channels)s::text[])[1 + i %% 4] AS channel,
       CASE WHEN r_language < 0.6 THEN 'pt' WHEN r_language < 0.8 THEN 'en' ELSE 'es' END AS language,
       CASE WHEN i <= %(open)s THEN (ARRAY['bot', 'waiting_human', 'human'])[1 + i %% 3]
            ELSE 'resolved' END AS state,
       now() - CASE WHEN i <= %(open)s THEN r_when * interval '7 days'
                    ELSE r_when * interval '365 days' END AS updated_at
  FROM (SELECT i, random() AS r_language, random() AS r_when
          FROM generate_series(1, %(n)s) AS i OFFSET 0) AS g;
ANALYZE bench_conversations;

INSERT INTO contacts (id, created_at, company_id, channel, external_id, name, email, language)
SELECT contact_id, updated_at - interval '3 days', %(company)s, channel, 'bench-' || i,
       (%(first)s::text[])[1 + i %% %(firsts)s] || ' '
       || (%(last)s::text[])[1 + (i / %(firsts)s) %% %(lasts)s],
       CASE WHEN channel = 'email' THEN 'cliente' || i || '@example.com' END, language
  FROM bench_conversations;

INSERT INTO conversations
       (id, created_at, company_id, contact_id, channel, state, language, team_id, assignee_id,
        waiting_since, ticket, updated_at)
SELECT id, updated_at - interval '3 days', %(company)s, contact_id, channel, state, language,
       CASE WHEN state IN ('waiting_human', 'human') THEN (%(teams)s::uuid[])[1 + (i / 3) %% %(nteams)s] END,
       CASE WHEN state = 'human' THEN (%(agents)s::uuid[])[1 + (i / 3) %% %(nagents)s] END,
       CASE WHEN state = 'waiting_human' THEN updated_at - interval '20 minutes' END,
       state = 'waiting_human' AND i %% 10 = 1,
       updated_at
  FROM bench_conversations;
"""

# each message picks a conversation at random (about M/N each, Poisson), a time in the two
# days before the conversation's last activity and an author; messages are inserted in time
# order, so that ``seq`` follows it
FILL_MESSAGES = """
INSERT INTO messages
       (id, created_at, company_id, conversation_id, channel, author, text, language, meta, delivery_status)
SELECT gen_random_uuid(), m.at, %(company)s, m.conversation_id, m.channel, m.author,
       t.body || m.extra, m.language, '{}'::jsonb,
       CASE WHEN m.author <> 'customer' THEN 'delivered' END
  FROM (
        SELECT p.g, c.id AS conversation_id, c.channel, c.language,
               CASE WHEN p.r_author < 0.5 THEN 'customer' WHEN p.r_author < 0.85 THEN 'bot'
                    ELSE 'agent' END AS author,
               c.updated_at - p.r_when * interval '2 days' AS at,
               CASE WHEN p.r_author < 0.05 THEN ' Pedido #' || (100000 + p.g %% 900000)::text
                    WHEN p.r_author < 0.06 AND %(marker)s <> '' THEN ' ' || %(marker)s
                    ELSE '' END AS extra
          FROM (SELECT g, 1 + floor(random() * %(n)s)::int AS i, random() AS r_author, random() AS r_when
                  FROM generate_series(1, %(messages)s) AS g OFFSET 0) AS p
          JOIN bench_conversations c ON c.i = p.i
         ORDER BY at
       ) AS m
  JOIN bench_pools pool
    ON pool.kind = CASE WHEN m.author = 'customer' THEN 'question' ELSE 'answer' END
   AND pool.language = m.language
  JOIN bench_texts t
    ON t.kind = pool.kind AND t.language = pool.language AND t.n = 1 + (m.g::bigint * 7919) %% pool.size;
"""

# about a third of the conversations carry a label, some two; a few labels are common, most rare
FILL_LABELS = """
INSERT INTO conversation_labels (conversation_id, label_id, company_id, created_at)
SELECT id, (%(labels)s::uuid[])[1 + floor(%(nlabels)s * power(r_label, 3))::int], %(company)s, now()
  FROM (SELECT c.id, k, random() AS r, random() AS r_label
          FROM bench_conversations c, generate_series(1, 2) AS k OFFSET 0) AS s
 WHERE r < CASE WHEN k = 1 THEN 0.3 ELSE 0.1 END
ON CONFLICT DO NOTHING;
"""


# what the analytics page counts of the human side: each conversation waiting for or with a
# person, and a third of the resolved ones, was handed off a day before its last activity (by
# the bot, for one of its reasons, or moved by an agent), taken by a person half an hour later
# (and answered then); the resolved ones were resolved at their last activity
FILL_TRANSITIONS = """
INSERT INTO state_transitions
       (id, created_at, company_id, conversation_id, from_state, to_state, actor_type, reason)
SELECT gen_random_uuid(), c.updated_at - interval '1 day', %(company)s, c.id, 'bot', 'waiting_human',
       CASE WHEN c.i %% 5 = 4 THEN 'agent' ELSE 'bot' END,
       (ARRAY['the customer asked for a person', 'handoff rule ''procon'' matched',
              'no answer with enough evidence', 'the customer repeated a question the bot had answered',
              'moved to team'])[1 + c.i %% 5]
  FROM bench_conversations c
 WHERE c.state IN ('waiting_human', 'human') OR (c.state = 'resolved' AND c.i %% 3 = 0);

INSERT INTO state_transitions
       (id, created_at, company_id, conversation_id, from_state, to_state, actor_type, reason)
SELECT gen_random_uuid(), c.updated_at - interval '1 day' + interval '30 minutes', %(company)s, c.id,
       'waiting_human', 'human', 'agent', NULL
  FROM bench_conversations c
 WHERE c.state = 'human' OR (c.state = 'resolved' AND c.i %% 3 = 0);

INSERT INTO messages
       (id, created_at, company_id, conversation_id, channel, author, text, language, meta, delivery_status)
SELECT gen_random_uuid(), c.updated_at - interval '1 day' + interval '30 minutes', %(company)s, c.id,
       c.channel, 'agent', 'Olá! Vou ajudar com isso.', c.language, '{}'::jsonb, 'delivered'
  FROM bench_conversations c
 WHERE c.state = 'human' OR (c.state = 'resolved' AND c.i %% 3 = 0);

INSERT INTO state_transitions
       (id, created_at, company_id, conversation_id, from_state, to_state, actor_type, reason)
SELECT gen_random_uuid(), c.updated_at, %(company)s, c.id,
       CASE WHEN c.i %% 3 = 0 THEN 'human' ELSE 'bot' END, 'resolved', 'agent', NULL
  FROM bench_conversations c
 WHERE c.state = 'resolved';
"""


# what the analytics page's SLA and CSAT sections count: a policy; each conversation taken by a
# person has its first-response target (due an hour after the handoff, met half an hour after
# it), the resolved ones their resolution target too (due two days after), a quarter of them
# breached; half the resolutions were surveyed five minutes after, 40 % of those answered
FILL_SERVICE_LEVELS = """
ANALYZE state_transitions;

INSERT INTO sla_policies (id, company_id, name, position, first_response_seconds, resolution_seconds)
VALUES (gen_random_uuid(), %(company)s, 'Bench', 0, 3600, 172800);

INSERT INTO sla_records
       (id, company_id, conversation_id, policy_id, target, started_at, due_at, stopped_at, breached,
        channel, team_id, assignee_id)
SELECT gen_random_uuid(), %(company)s, c.id,
       (SELECT id FROM sla_policies WHERE company_id = %(company)s AND name = 'Bench'), t.target,
       c.updated_at - interval '1 day', c.updated_at - interval '1 day' + t.allowed,
       CASE WHEN t.target = 'first_response' THEN c.updated_at - interval '1 day' + interval '30 minutes'
            ELSE c.updated_at END,
       c.i %% 4 = 0, c.channel, (%(teams)s::uuid[])[1 + (c.i / 3) %% %(nteams)s],
       (%(agents)s::uuid[])[1 + (c.i / 3) %% %(nagents)s]
  FROM bench_conversations c
 CROSS JOIN (VALUES ('first_response', interval '1 hour'), ('resolution', interval '2 days'))
       AS t(target, allowed)
 WHERE (c.state = 'human' OR (c.state = 'resolved' AND c.i %% 3 = 0))
   AND (t.target = 'first_response' OR c.state = 'resolved');

INSERT INTO csat_surveys
       (id, company_id, conversation_id, transition_id, channel, language, resolved_at, sent_at,
        closes_at, score, answered_at, spent_links)
SELECT gen_random_uuid(), %(company)s, c.id, t.id, c.channel, c.language, t.created_at,
       t.created_at + interval '5 minutes', t.created_at + interval '7 days',
       CASE WHEN c.i %% 10 < 4 THEN 1 + (c.i / 10) %% 5 END,
       CASE WHEN c.i %% 10 < 4 THEN t.created_at + interval '10 minutes' END, '[]'::jsonb
  FROM bench_conversations c
  JOIN state_transitions t
    ON t.conversation_id = c.id AND t.company_id = %(company)s AND t.to_state = 'resolved'
 WHERE c.state = 'resolved' AND c.i %% 2 = 0;
"""


# a webhook's deliveries over the last 90 days, as ``atende_emit`` queues them and the task
# leaves them: most delivered at once, some after a 503, a few failed after six tries (each
# attempt a row); the payload as sent (a message's text included)
FILL_DELIVERIES = """
CREATE TEMP TABLE bench_deliveries AS
SELECT gen_random_uuid() AS id, now() - r_when * interval '90 days' AS created_at,
       CASE WHEN r_event < 0.7 THEN 'message.created' WHEN r_event < 0.9 THEN 'conversation.state_changed'
            ELSE 'conversation.handoff' END AS event_type,
       CASE WHEN r_status < 0.985 THEN 'delivered' ELSE 'failed' END AS status,
       CASE WHEN r_status < 0.95 THEN 1 WHEN r_status < 0.985 THEN 2 ELSE 6 END AS attempts
  FROM (SELECT random() AS r_when, random() AS r_event, random() AS r_status
          FROM generate_series(1, %(deliveries)s) OFFSET 0) AS g;

INSERT INTO webhook_deliveries
       (id, created_at, company_id, endpoint_id, event_type, payload, status, attempts, delivered_at)
SELECT id, created_at, %(company)s, %(endpoint)s, event_type,
       jsonb_build_object(
           'id', id::text, 'type', event_type, 'company_id', %(company)s::text,
           'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'data', jsonb_build_object(
               'conversation_id', gen_random_uuid()::text, 'message_id', gen_random_uuid()::text,
               'channel', 'webchat', 'author', 'customer',
               'text', 'Olá, comprei um produto na semana passada e ainda não chegou. Podem verificar?')),
       status, attempts,
       CASE WHEN status = 'delivered' THEN created_at + (attempts - 1) * interval '30 seconds' END
  FROM bench_deliveries;

INSERT INTO webhook_attempts
       (id, created_at, company_id, delivery_id, number, status_code, error, duration_ms)
SELECT gen_random_uuid(), d.created_at + (k - 1) * interval '30 seconds', %(company)s, d.id, k,
       CASE WHEN d.status = 'delivered' AND k = d.attempts THEN 200 WHEN k %% 2 = 1 THEN 503 END,
       CASE WHEN d.status = 'delivered' AND k = d.attempts THEN NULL WHEN k %% 2 = 1 THEN 'HTTP 503'
            ELSE 'no answer within 10 s' END,
       20 + random() * 300
  FROM bench_deliveries d, generate_series(1, d.attempts) AS k;

DROP TABLE bench_deliveries;
"""


# the knowledge gaps (``atende.gaps``): a share of the customers' messages handed off for weak
# evidence (a trace each), in ``topics`` topics of very different sizes (the first ones large),
# half with an agent's answer. Vectors are one number: the page never reads them.
FILL_GAPS = """
INSERT INTO traces (id, created_at, company_id, conversation_id, message_id, decision, reason, language,
                    answerer, retriever, total_ms, steps, retrieved)
SELECT gen_random_uuid(), m.created_at, m.company_id, m.conversation_id, m.id, 'handoff',
       'weak evidence: best coverage 0.12 < threshold 0.35', coalesce(m.language, 'pt'), 'extractive',
       'hybrid', 12.5, '[]', '[]'
  FROM messages m
 WHERE m.company_id = %(company)s AND m.author = 'customer' AND random() < %(share)s;

CREATE TEMP TABLE bench_topics AS
SELECT gen_random_uuid() AS id, n FROM generate_series(0, %(topics)s - 1) AS n;

INSERT INTO knowledge_gap_topics (id, created_at, company_id, label, representative_id, terms, size)
SELECT id, now(), %(company)s, 'Pergunta sem resposta número ' || n, gen_random_uuid(), '["entrega"]', 0
  FROM bench_topics;

INSERT INTO knowledge_gap_questions
       (id, created_at, company_id, trace_id, conversation_id, message_id, message_seq, source, asked_at,
        channel, language, question, model, vector, answer, topic_id)
SELECT gen_random_uuid(), now(), t.company_id, t.id, t.conversation_id, t.message_id, m.seq, 'handoff',
       m.created_at, c.channel, t.language, left(m.text, 1000), 'bench', ARRAY[0.5]::real[],
       CASE WHEN t.answered THEN 'Resposta da equipe: o prazo é de 5 a 8 dias úteis.' END, b.id
  FROM (SELECT traces.*, floor(power(random(), 3) * %(topics)s)::int AS k, random() < 0.5 AS answered
          FROM traces WHERE company_id = %(company)s OFFSET 0) AS t
  JOIN messages m ON m.id = t.message_id
  JOIN conversations c ON c.id = t.conversation_id
  JOIN bench_topics b ON b.n = t.k;

INSERT INTO knowledge_gap_runs (company_id, computed_at, seen_up_to, questions, topics)
SELECT %(company)s, now(), now(), count(*), %(topics)s FROM knowledge_gap_questions
 WHERE company_id = %(company)s;

DROP TABLE bench_topics;
"""


def fill_gaps(url: str, company: Company, share: float, topics: int, *, seed: float) -> None:
    """Write the company's knowledge gaps (``FILL_GAPS``)."""
    started = time.monotonic()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        params = {"company": company.id, "share": share, "topics": topics}
        for statement in FILL_GAPS.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)
        conn.commit()
    company.fill_seconds["knowledge gaps"] = round(time.monotonic() - started, 1)


def fill_deliveries(url: str, company: Company, deliveries: int, *, seed: float) -> None:
    """Write the company's webhook deliveries and their attempts: ``deliveries`` to its first
    endpoint, a twentieth as many to its second."""
    started = time.monotonic()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        for endpoint, n in zip(company.webhook_ids, (deliveries, deliveries // 20), strict=True):
            params = {"company": company.id, "endpoint": endpoint, "deliveries": n}
            for statement in FILL_DELIVERIES.split(";\n"):
                if statement.strip():
                    conn.execute(statement, params)
        conn.commit()
    company.fill_seconds["webhook deliveries"] = round(time.monotonic() - started, 1)


# the audit log: rows over the last 90 days, by the company's members (a few by its API key,
# some by the system), most of them replies and state changes, as a busy team writes them
FILL_AUDIT = """
INSERT INTO audit_events
       (id, created_at, company_id, actor_type, actor_user_id, actor_key_id, action,
        target_type, target_id, details, ip)
SELECT gen_random_uuid(), now() - r_when * interval '90 days', %(company)s,
       CASE WHEN r_actor < 0.9 THEN 'user' WHEN r_actor < 0.95 THEN 'api_key' ELSE 'system' END,
       CASE WHEN r_actor < 0.9 THEN (%(members)s::uuid[])[1 + floor(r_who * %(n_members)s)::int] END,
       CASE WHEN r_actor >= 0.9 AND r_actor < 0.95 THEN %(key)s::uuid END,
       (%(actions)s::text[])[1 + floor(r_action * %(n_actions)s)::int],
       'conversation', gen_random_uuid()::text,
       jsonb_build_object('from', 'waiting_human', 'to', 'human'),
       ('10.0.' || floor(r_who * 200)::int || '.' || floor(r_when * 250)::int)::inet
  FROM (SELECT random() AS r_when, random() AS r_actor, random() AS r_who,
               -- replies and state changes most, settings and sign-ins rarely
               power(random(), 3) AS r_action
          FROM generate_series(1, %(events)s) OFFSET 0) AS g
"""
AUDIT_ACTIONS = [
    "conversation.replied",
    "conversation.assigned",
    "conversation.resolved",
    "conversation.handed_back",
    "conversation.snoozed",
    "conversation.reopened",
    "auth.signed_in",
    "auth.signed_out",
    "document.uploaded",
    "member.role_changed",
    "settings.hours_changed",
    "api_key.created",
]


def fill_audit(url: str, company: Company, events: int, *, seed: float) -> None:
    """Write ``events`` rows of the company's audit log (``FILL_AUDIT``)."""
    started = time.monotonic()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        members = [
            r[0] for r in conn.execute("SELECT user_id FROM memberships WHERE company_id = %s", (company.id,))
        ]
        key = conn.execute("SELECT id FROM api_keys WHERE company_id = %s LIMIT 1", (company.id,)).fetchone()
        params = {
            "company": company.id,
            "members": members,
            "n_members": len(members),
            "key": key[0] if key else None,
            "actions": AUDIT_ACTIONS,
            "n_actions": len(AUDIT_ACTIONS),
            "events": events,
        }
        conn.execute(FILL_AUDIT, params)
        conn.commit()
    company.fill_seconds["audit events"] = round(time.monotonic() - started, 1)


def audit_cases(url: str, company: Company) -> list[Case]:
    """The audit log's page (an admin's): its first page; one action; one area; one person;
    the last week; and a page halfway down (its cursor: the row there)."""
    path = "/app/logs/audit"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        person = conn.execute(
            "SELECT actor_user_id FROM audit_events"
            " WHERE company_id = %s AND actor_user_id IS NOT NULL LIMIT 1",
            (company.id,),
        ).fetchone()
        halfway = conn.execute(
            "SELECT created_at, id FROM audit_events WHERE company_id = %s ORDER BY created_at DESC, id DESC"
            " OFFSET (SELECT count(*) / 2 FROM audit_events WHERE company_id = %s) LIMIT 1",
            (company.id, company.id),
        ).fetchone()
    week = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    found = [
        Case("logs: audit log", "settings", {"path": path}),
        Case(
            "logs: audit · a rare action",
            "settings",
            {"path": path, "query": {"action": "member.role_changed"}},
        ),
        Case("logs: audit · an area", "settings", {"path": path, "query": {"action": "auth."}}),
        Case("logs: audit · last 7 days", "settings", {"path": path, "query": {"since": week}}),
    ]
    if person:
        found.append(
            Case("logs: audit · one person", "settings", {"path": path, "query": {"user": str(person[0])}})
        )
    if halfway:
        raw = f"{halfway[0].isoformat()}|{halfway[1]}"
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        found.append(
            Case("logs: audit · halfway down", "settings", {"path": path, "query": {"cursor": cursor}})
        )
    return found


def fill(
    url: str,
    company: Company,
    sizes: Sizes,
    texts: Sequence[tuple[str, str, str]],
    *,
    seed: float,
    marker: str = "",
) -> None:
    """Write the company's contacts, conversations, messages and labels, in PostgreSQL."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        conn.execute("CREATE TEMP TABLE bench_texts (kind text, language text, n int, body text)")
        numbered: dict[tuple[str, str], int] = {}
        with conn.cursor().copy("COPY bench_texts (kind, language, n, body) FROM STDIN") as copy:
            for kind, language, body in texts:
                n = numbered[kind, language] = numbered.get((kind, language), 0) + 1
                copy.write_row((kind, language, n, body))
        conn.execute("CREATE INDEX ON bench_texts (kind, language, n)")
        conn.execute(
            "CREATE TEMP TABLE bench_pools AS"
            " SELECT kind, language, count(*) AS size FROM bench_texts GROUP BY 1, 2"
        )
        conn.execute("ANALYZE bench_texts")
        conn.execute("ANALYZE bench_pools")
        params: dict[str, Any] = {
            "company": company.id,
            "n": sizes.conversations,
            "open": sizes.open,
            "messages": sizes.messages,
            "channels": list(CHANNELS),
            "first": FIRST_NAMES,
            "last": LAST_NAMES,
            "firsts": len(FIRST_NAMES),
            "lasts": len(LAST_NAMES),
            "teams": company.team_ids,
            "nteams": len(company.team_ids),
            "agents": company.agent_ids,
            "nagents": len(company.agent_ids),
            "labels": company.label_ids,
            "nlabels": len(company.label_ids),
            "marker": marker,
        }
        for step, sql in (
            ("conversations", FILL_CONVERSATIONS),
            ("messages", FILL_MESSAGES),
            ("labels", FILL_LABELS),
            ("state changes", FILL_TRANSITIONS),
            ("SLA targets and CSAT surveys", FILL_SERVICE_LEVELS),
        ):
            started = time.monotonic()
            for statement in sql.split(";\n"):
                if statement.strip():
                    conn.execute(statement, params)
            company.fill_seconds[step] = round(time.monotonic() - started, 1)
        conn.commit()


# the company's application events (``/app/logs``) over the last 30 days (its retention): most
# webhook attempts that failed, then failed deliveries (each about one of its conversations),
# failed jobs, refused credentials and circuit changes; a few carry a rare provider code
FILL_EVENTS = """
CREATE TEMP TABLE bench_event_conversations AS
SELECT row_number() OVER () AS n, id
  FROM (SELECT id FROM conversations WHERE company_id = %(company)s ORDER BY created_at DESC LIMIT 5000) AS c;

INSERT INTO app_events (id, created_at, company_id, level, kind, message, conversation_id, details)
SELECT gen_random_uuid(), now() - r_when * interval '30 days', %(company)s,
       CASE WHEN r_kind < 0.55 AND r_level < 0.85 THEN 'warning' ELSE 'error' END,
       CASE WHEN r_kind < 0.55 THEN 'webhook_failed' WHEN r_kind < 0.85 THEN 'delivery_failed'
            WHEN r_kind < 0.95 THEN 'job_failed' WHEN r_kind < 0.98 THEN 'channel_credentials_failed'
            ELSE 'llm_circuit_changed' END,
       CASE WHEN r_kind < 0.55 THEN 'The webhook at hooks.example.com did not accept message.created'
                 || ' (attempt '
                 || (1 + floor(r_level * 8))::int || '): ' || CASE WHEN r_level < 0.5 THEN 'HTTP 503'
                 ELSE 'no answer within 10 s' END
            WHEN r_kind < 0.85 THEN 'A whatsapp message could not be delivered: '
                 || CASE WHEN r_rare < 0.005 THEN '131047 re-engagement window closed'
                         WHEN r_level < 0.5 THEN '400 recipient is not on the network'
                         ELSE 'ConnectError: connection refused' END
            WHEN r_kind < 0.95 THEN 'knowledge:index_document failed: ValueError: the file is not a PDF'
            WHEN r_kind < 0.98 THEN 'The whatsapp credentials for number [phone] were refused: HTTP 401'
            ELSE 'The LLM endpoint failed repeatedly: its circuit opened' END,
       CASE WHEN r_kind >= 0.55 AND r_kind < 0.85 THEN c.id END,
       jsonb_build_object('channel', 'whatsapp')
  FROM (SELECT random() AS r_when, random() AS r_kind, random() AS r_level, random() AS r_rare,
               random() AS r_conv FROM generate_series(1, %(events)s) OFFSET 0) AS g
  LEFT JOIN bench_event_conversations c
         ON c.n = 1 + floor(g.r_conv * (SELECT count(*) FROM bench_event_conversations))::int;

DROP TABLE bench_event_conversations
"""


def fill_events(url: str, company: Company, events: int, *, seed: float) -> None:
    """Write the company's application events (``FILL_EVENTS``)."""
    started = time.monotonic()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        for statement in FILL_EVENTS.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"company": company.id, "events": events})
        conn.commit()
    company.fill_seconds["app events"] = round(time.monotonic() - started, 1)


def busiest_event_conversation(url: str, company_id: uuid.UUID) -> uuid.UUID | None:
    """The conversation with the most events of the company (the conversation filter's case)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT conversation_id FROM app_events WHERE company_id = %s AND conversation_id IS NOT NULL"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            (company_id,),
        ).fetchone()
    return row[0] if row else None


def logs_cases(conversation_id: uuid.UUID | None) -> list[Case]:
    """The events page's searches (an admin's, ``/app/logs``): newest first, by level, by kind,
    by words (a word in half the events, a rare provider code), by words within a kind, by
    conversation, over the last 24 hours."""
    path = "/app/logs"
    found = [
        Case("settings: logs · newest events", "settings", {"path": path}),
        Case("settings: logs · level=error", "settings", {"path": path, "query": {"level": "error"}}),
        Case("settings: logs · kind=job_failed", "settings", {"path": path, "query": {"kind": "job_failed"}}),
        Case("settings: logs · text 'webhook'", "settings", {"path": path, "query": {"text": "webhook"}}),
        Case("settings: logs · text '131047'", "settings", {"path": path, "query": {"text": "131047"}}),
        Case(
            "settings: logs · delivery_failed · text 'refused'",
            "settings",
            {"path": path, "query": {"kind": "delivery_failed", "text": "refused"}},
        ),
        Case("settings: logs · last 24 hours", "settings", {"path": path, "query": {"range": "24h"}}),
    ]
    if conversation_id is not None:
        found.append(
            Case(
                "settings: logs · a conversation",
                "settings",
                {"path": path, "query": {"conversation": str(conversation_id)}},
            )
        )
    return found


SEARCH_INDEX = "ix_messages_search"


@contextmanager
def search_index_rebuilt(url: str, timings: dict[str, float]) -> Iterator[None]:
    """Drop the messages' search index while the body runs and build it again after, as
    migration 0021 defines it (a GIN index is built faster at once than row by row; the
    database must be the benchmark's own)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (SEARCH_INDEX,)).fetchone()
        assert row is not None
        conn.execute(f"DROP INDEX {SEARCH_INDEX}")
    try:
        yield
    finally:
        started = time.monotonic()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(row[0])
        timings["search index"] = round(time.monotonic() - started, 1)


def vacuum_analyze(url: str, timings: dict[str, float]) -> None:
    """What autovacuum would have done by the time a company had this many messages."""
    started = time.monotonic()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for table in (
            "contacts",
            "conversations",
            "messages",
            "conversation_labels",
            "webhook_deliveries",
            "webhook_attempts",
            "app_events",
            "sla_records",
            "csat_surveys",
        ):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum analyze"] = round(time.monotonic() - started, 1)


@dataclass(frozen=True)
class Terms:
    """Search terms picked from the company's own messages by how many contain them."""

    common: str
    medium: str
    rare: str
    order: str
    none: str = "xylofonequartzo"


def pick_terms(url: str, company_id: uuid.UUID) -> Terms:
    """Words of a 1% sample of the messages: the commonest, one in about 1% of the messages,
    one in about 0.05%; an order number one customer wrote."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        sample = (
            "SELECT atende_message_search_v1(company_id, text) FROM messages"
            f" WHERE company_id = '{company_id}' AND seq % 100 = 0"
        )
        total = conn.execute(f"SELECT count(*) FROM ({sample}) AS s").fetchone()
        words = conn.execute(
            "SELECT word, ndoc FROM ts_stat(%s) WHERE word ~ '^[a-z]{5,}$' ORDER BY ndoc DESC, word",
            (sample,),
        ).fetchall()
        order = conn.execute(
            "SELECT substring(text from '#([0-9]+)') FROM messages WHERE company_id = %s"
            " AND text LIKE %s LIMIT 1",
            (company_id, "%Pedido #%"),
        ).fetchone()
    n = max(1, int(total[0]) if total else 1)

    def nearest(share: float) -> str:
        return min(words, key=lambda w: (abs(w[1] / n - share), w[0]))[0] if words else "pedido"

    return Terms(
        common=words[0][0] if words else "pedido",
        medium=nearest(0.01),
        rare=nearest(0.0005),
        order=order[0] if order and order[0] else "123456",
    )


@dataclass(frozen=True)
class Case:
    """One request of the inbox: ``kind`` list, page2 (the page after the first), counts, or
    conversation (one conversation with its messages: the conversation view's data)."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def cases(company: Company, terms: Terms) -> list[Case]:
    agent, team, common_label, rare_label = (
        company.agent_emails[1],
        company.team_slugs[-1],
        company.label_names[0],
        company.label_names[-1],
    )
    open_ = {"state": ["open"]}
    return [
        Case("all", "list"),
        Case("all · open", "list", open_),
        Case("mine", "list", {"view": "mine"}),
        Case("mine · open", "list", {"view": "mine", **open_}),
        Case("unassigned", "list", {"view": "unassigned"}),
        Case("my_teams", "list", {"view": "my_teams"}),
        Case("my_teams · open", "list", {"view": "my_teams", **open_}),
        Case("state=waiting_human", "list", {"state": ["waiting_human"]}),
        Case("state=bot,human", "list", {"state": ["bot", "human"]}),
        Case("state=resolved", "list", {"state": ["resolved"]}),
        Case("channel=whatsapp", "list", {"channel": "whatsapp"}),
        Case(f"team={team}", "list", {"team": team}),
        Case("assignee=(another agent)", "list", {"assignee": agent}),
        Case("assignee=none · open", "list", {"assignee": "none", **open_}),
        Case(f"label={common_label} (common)", "list", {"label": common_label}),
        Case(f"label={rare_label} (rare)", "list", {"label": rare_label}),
        Case("language=es", "list", {"language": "es"}),
        Case("language=es · channel=email · open", "list", {"language": "es", "channel": "email", **open_}),
        Case(
            f"my_teams · label={rare_label} · open",
            "list",
            {"view": "my_teams", "label": rare_label, **open_},
        ),
        Case(f"search '{terms.common}' (common)", "list", {"search": terms.common}),
        Case(f"search '{terms.medium}' (~1%)", "list", {"search": terms.medium}),
        Case(f"search '{terms.rare}' (~0.05%)", "list", {"search": terms.rare}),
        Case(f"search '#{terms.order}' (an order)", "list", {"search": f"#{terms.order}"}),
        Case(f"search '{terms.common} {terms.medium}'", "list", {"search": f"{terms.common} {terms.medium}"}),
        Case(f"search '{terms.none}' (no match)", "list", {"search": terms.none}),
        Case(
            f"search '{terms.medium}' · mine · open",
            "list",
            {"view": "mine", "search": terms.medium, **open_},
        ),
        Case("all · open, page 2", "page2", open_),
        Case(f"search '{terms.common}', page 2", "page2", {"search": terms.common}),
        Case(f"label={common_label}, page 2", "page2", {"label": common_label}),
        Case("counts · open", "counts", open_),
        Case("counts · every state", "counts"),
        Case(f"counts · search '{terms.medium}'", "counts", {"search": terms.medium}),
        Case(f"counts · label={rare_label}", "counts", {"label": rare_label}),
        Case("conversation view (most messages)", "conversation", {"which": "largest"}),
        Case("conversation view (newest open)", "conversation", {"which": "newest"}),
    ]


def page_cases(company: Company, terms: Terms) -> list[Case]:
    """The dashboard's pages (``/app/inbox``: its list, each view's count, the filters' choices;
    ``/app/conversations/{id}``: the thread, traces, the customer and the action controls;
    ``/app/knowledge/try``: the form, and a question through the bot's turn)."""
    rare_label = company.label_names[-1]
    return [
        Case("page: inbox · all", "page"),
        Case("page: inbox · mine", "page", {"view": "mine"}),
        Case("page: inbox · unassigned", "page", {"view": "unassigned"}),
        Case("page: inbox · my_teams", "page", {"view": "my_teams"}),
        Case("page: inbox · all · open", "page", {"state": "open"}),
        Case(f"page: inbox · label={rare_label} · open", "page", {"label": rare_label, "state": "open"}),
        Case(f"page: inbox · search '{terms.medium}'", "page", {"search": terms.medium}),
        Case(f"page: inbox · search '{terms.common}'", "page", {"search": terms.common}),
        Case("page: conversation (most messages)", "page", {"which": "largest"}),
        Case("page: conversation (newest open)", "page", {"which": "newest"}),
        Case("page: knowledge · try a question (form)", "page", {"path": "/app/knowledge/try"}),
        Case(
            "page: knowledge · try a question",
            "page",
            {"path": "/app/knowledge/try", "query": {"question": "Qual o prazo de entrega para o interior?"}},
        ),
    ]


def analytics_cases(company: Company, today: date) -> list[Case]:
    """The analytics page (every chart, each with its table view) over 90 days and with each
    filter, and a chart's CSV; signed in as the measured agent (the page is a viewer's)."""
    days90 = {"start": (today - timedelta(days=89)).isoformat(), "end": today.isoformat()}
    return [
        Case("analytics: 30 days (default)", "analytics", {"path": "/app/analytics"}),
        Case("analytics: 90 days", "analytics", {"path": "/app/analytics", "query": days90}),
        Case(
            "analytics: 90 days · channel=whatsapp",
            "analytics",
            {"path": "/app/analytics", "query": {**days90, "channel": "whatsapp"}},
        ),
        Case(
            f"analytics: 90 days · team={company.team_slugs[0]}",
            "analytics",
            {"path": "/app/analytics", "query": {**days90, "team": company.team_slugs[0]}},
        ),
        Case(
            "analytics: 90 days · language=es",
            "analytics",
            {"path": "/app/analytics", "query": {**days90, "language": "es"}},
        ),
        Case(
            "analytics: 90 days, a chart's CSV (agents)",
            "analytics",
            {"path": "/app/analytics/agents.csv", "query": days90},
        ),
        Case(
            "analytics: 90 days, SLA per agent's CSV",
            "analytics",
            {"path": "/app/analytics/sla-agents.csv", "query": days90},
        ),
        Case(
            "analytics: 90 days, CSAT per channel's CSV",
            "analytics",
            {"path": "/app/analytics/csat.csv", "query": days90},
        ),
    ]


async def refresh_analytics(url: str, companies: Sequence[Company]) -> None:
    """What the periodic ``analytics:refresh`` does the first time: measure every conversation."""
    db = Database(url, pool_size=2)
    try:
        for company in companies:
            started = time.monotonic()
            async with db.transaction(company.id) as session:
                await rollup.refresh(session, company.id, datetime.now(UTC))
            company.fill_seconds["analytics refresh"] = round(time.monotonic() - started, 1)
    finally:
        await db.dispose()


def settings_cases(company: Company, older_than: uuid.UUID | None) -> list[Case]:
    """The settings pages (an admin's), each with what it reads: the index; the company's
    profile, hours, holidays, handoff rules; the web chat widget's form and its preview (with
    a form's colours, as the page's script asks while one types); the teams and one team; the
    bot; the API keys; the webhooks and the busiest one's delivery log (its first page, and a
    page halfway down: ``older_than``, a delivery of that page's start); the channels."""
    hook = company.webhook_ids[0]
    preview = {
        "primary_color": "#7a1f5c",
        "primary_text_color": "#ffffff",
        "accent_color": "#0f766e",
        "title": "Loja da Olga",
        "greeting_pt_br": "Olá! Como podemos ajudar?",
        "handoff_button": "true",
        "preview_lang": "pt",
    }
    found = [
        Case("settings: index", "settings", {"path": "/app/settings"}),
        Case("settings: company", "settings", {"path": "/app/settings/company"}),
        Case("settings: hours", "settings", {"path": "/app/settings/hours"}),
        Case("settings: holidays", "settings", {"path": "/app/settings/holidays"}),
        Case("settings: handoff", "settings", {"path": "/app/settings/handoff"}),
        Case("settings: widget", "settings", {"path": "/app/settings/widget"}),
        Case(
            "settings: widget preview", "settings", {"path": "/app/settings/widget/preview", "query": preview}
        ),
        Case("settings: teams", "settings", {"path": "/app/settings/teams"}),
        Case("settings: a team", "settings", {"path": f"/app/settings/teams/{company.team_ids[0]}"}),
        Case("settings: bot", "settings", {"path": "/app/settings/bot"}),
        Case("settings: api keys", "settings", {"path": "/app/settings/api-keys"}),
        Case("settings: webhooks", "settings", {"path": "/app/settings/webhooks"}),
        Case("settings: a webhook's log", "settings", {"path": f"/app/settings/webhooks/{hook}"}),
    ]
    if older_than is not None:
        found.append(
            Case(
                "settings: a webhook's log, halfway down",
                "settings",
                {"path": f"/app/settings/webhooks/{hook}", "query": {"before": str(older_than)}},
            )
        )
    found.append(Case("settings: channels", "settings", {"path": "/app/settings/channels"}))
    # the knowledge gaps (an admin's: with the editor's links), by date range and a filter
    today = time.strftime("%Y-%m-%d", time.gmtime())
    ninety = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 89 * 86400))
    year = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 364 * 86400))
    for name, query in (
        ("30 days", {}),
        ("90 days", {"from": ninety, "to": today}),
        ("a year", {"from": year, "to": today}),
        ("90 days · webchat · pt", {"from": ninety, "to": today, "channel": "webchat", "language": "pt"}),
    ):
        found.append(
            Case(
                f"analytics: knowledge gaps · {name}",
                "settings",
                {"path": "/app/analytics/gaps", "query": query},
            )
        )
    return found


def delivery_halfway(url: str, endpoint_id: uuid.UUID) -> uuid.UUID | None:
    """The delivery halfway down the endpoint's log (newest first); ``None``: it has none."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s ORDER BY created_at DESC, id DESC"
            " OFFSET (SELECT count(*) / 2 FROM webhook_deliveries WHERE endpoint_id = %s) LIMIT 1",
            (endpoint_id, endpoint_id),
        ).fetchone()
    return row[0] if row else None


def sign_in(http: httpx.Client, email: str, password: str) -> None:
    """Through the sign-in form, as a browser does (the session cookie stays in ``http``)."""
    form = http.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError(f"no sign-in form at /app/login: {form.status_code}")
    signed = http.post(
        "/app/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    if signed.status_code != 303:
        raise RuntimeError(f"signing in to the dashboard failed: {signed.status_code} {signed.text[:200]}")


def measure_pages(
    base_url: str,
    company: Company,
    all_cases: Sequence[Case],
    targets: dict[str, uuid.UUID],
    *,
    repeat: int,
    email: str | None = None,
) -> tuple[dict[str, list[float]], dict[str, int], list[str]]:
    """Each page ``repeat`` times through ``atende serve``, signed in as ``email`` (else the
    measured agent; one browser, after one untimed request): request to the last byte of the
    HTML. A page is not followed where it redirects (to sign in, say): an error."""
    timings: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    errors: list[str] = []
    with httpx.Client(base_url=base_url, timeout=60, headers={"Accept-Language": "pt-BR"}) as http:
        sign_in(http, email or company.agent_emails[0], company.agent_password)
        for case in all_cases:
            if "which" in case.params:
                path, params = f"/app/conversations/{targets[case.params['which']]}", {}
            elif "path" in case.params:
                path, params = case.params["path"], case.params.get("query", {})
            else:
                path, params = "/app/inbox", case.params

            def run(path: str = path, params: dict[str, Any] = params, name: str = case.name) -> int:
                response = http.get(path, params=params)
                if response.status_code != 200:
                    errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                return len(response.content)

            sizes[case.name] = run()
            found = []
            for _ in range(repeat):
                started = time.perf_counter()
                run()
                found.append((time.perf_counter() - started) * 1000)
            timings[case.name] = found
    return timings, sizes, errors


# --- live updates: one event fanned out to many open screens ---------------------------------

# what each trigger makes a screen hear: (a conversation's screen, an inbox's screen); a note
# does not move the conversation in the list (its ``updated_at`` follows what the customer sees)
FANOUT_TRIGGERS: dict[str, tuple[str, str | None]] = {
    "customer message": ("thread", "inbox"),
    "note": ("thread", None),
    "resolve": ("status", "inbox"),
    "reopen": ("status", "inbox"),
}
FANOUT_WAIT_SECONDS = 15.0  # the longest a screen may take to hear an event before it counts as missed
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)  # the server pings every 15 s


@dataclass
class Screen:
    """One open ``GET /app/live`` (a browser tab): what it heard and when (``perf_counter``)."""

    conversation: bool  # ``?conversation=``: the conversation's page; else the inbox's
    heard: list[tuple[float, str]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None


async def watch(client: httpx.AsyncClient, screen: Screen, conversation_id: uuid.UUID) -> None:
    """Read the screen's stream until cancelled, noting each event's name and arrival."""
    params = {"conversation": str(conversation_id)} if screen.conversation else {}
    try:
        async with client.stream("GET", "/app/live", params=params, timeout=STREAM_TIMEOUT) as response:
            if response.status_code != 200:
                screen.error = f"/app/live: {response.status_code}"
                screen.ready.set()
                return
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                    screen.heard.append((time.perf_counter(), name))
                    if name == "ready":
                        screen.ready.set()
    except httpx.HTTPError as exc:
        screen.error = f"/app/live: {type(exc).__name__} {exc}"
        screen.ready.set()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def database_activity(url: str) -> tuple[int, int]:
    """The database's committed transactions so far, and the server's connections to it now."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(url), autocommit=True, connect_timeout=10
    ) as conn:
        row = await (
            await conn.execute(
                "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
                " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                "  AND pid <> pg_backend_pid())"
            )
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class Triggers:
    """What a customer and an agent do to the conversation: a message through the API channel
    (the company's key), and a note, resolve and reopen through the conversation page's forms as
    the page's HTMX sends them (agent 0's session and the page's CSRF token)."""

    def __init__(
        self, api: httpx.AsyncClient, page: httpx.AsyncClient, conversation_id: uuid.UUID, csrf: str
    ) -> None:
        self.api, self.page, self.conversation_id, self.csrf = api, page, conversation_id, csrf
        self.count = 0

    async def run(self, kind: str) -> float:
        """Send ``kind``; the request's duration in ms (an error raises)."""
        self.count += 1
        started = time.perf_counter()
        if kind == "customer message":
            response = await self.api.post(
                "/v1/messages",
                json={
                    "contact": {"external_id": "bench-fanout"},
                    "conversation_id": str(self.conversation_id),
                    "text": f"Ainda estou esperando o pedido, mensagem {self.count}.",
                },
            )
        else:
            response = await self.page.post(
                f"/app/conversations/{self.conversation_id}/{kind}",
                data={"text": f"Nota interna {self.count}: cliente avisado."} if kind == "note" else {},
                headers={"HX-Request": "true", "X-CSRF-Token": self.csrf},
            )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{kind}: {response.status_code} {response.text[:200]}")
        return (time.perf_counter() - started) * 1000


async def heard_after(
    screens: Sequence[Screen], event: str, since: float, marks: Sequence[int], deadline: float
) -> list[float | None]:
    """For each screen, ms from ``since`` to the first ``event`` it heard after its ``marks``
    (``None``: not within the deadline)."""
    found: list[float | None] = [None] * len(screens)
    while True:
        for i, screen in enumerate(screens):
            if found[i] is None:
                for at, name in screen.heard[marks[i] :]:
                    if name == event and at >= since:
                        found[i] = (at - since) * 1000
                        break
        if all(f is not None for f in found) or time.perf_counter() > deadline:
            return found
        await asyncio.sleep(0.02)


async def measure_fanout(
    base_url: str,
    url: str,
    server_pid: int,
    company: Company,
    *,
    streams: Sequence[int],
    rounds: int,
    idle: float,
) -> list[dict[str, Any]]:
    """For each N in ``streams``: N screens on one conversation (``/app/live?conversation=``) and
    N on the inbox (``/app/live``), signed in as the company's agents in turn; then ``rounds``
    times each trigger, timing from the triggering request's start to each screen hearing its
    event. Also: how long the N + N streams took to open, and with them open and idle for
    ``idle`` seconds the server's CPU and the database's transactions per second."""
    from atende.dashboard.live import CHECK_SECONDS

    agents = min(len(company.agent_emails), max(streams))
    cookies = []
    for email in company.agent_emails[:agents]:  # every agent shares agent 0's password
        with httpx.Client(base_url=base_url, timeout=60) as http:
            sign_in(http, email, company.agent_password)
            cookies.append(http.cookies)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"Authorization": f"Bearer {company.admin_key}"}
    results = []
    async with (
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api,
        httpx.AsyncClient(base_url=base_url, cookies=cookies[0], timeout=30) as page,
    ):
        opened = await api.post(
            "/v1/messages",
            json={
                "contact": {"external_id": "bench-fanout", "name": "Cliente Ao Vivo"},
                "text": "Olá, meu pedido?",
            },
        )
        opened.raise_for_status()
        conversation_id = uuid.UUID(opened.json()["conversation_id"])
        form = await page.get(f"/app/conversations/{conversation_id}")
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', form.text)
        if form.status_code != 200 or token is None:
            raise RuntimeError(f"no conversation page: {form.status_code}")
        triggers = Triggers(api, page, conversation_id, token.group(1))
        for n in streams:
            clients = [
                httpx.AsyncClient(base_url=base_url, cookies=jar, limits=limits, timeout=STREAM_TIMEOUT)
                for jar in cookies[: min(n, agents)]
            ]
            screens = [
                Screen(conversation=kind == "conversation")
                for kind in ("conversation", "inbox")
                for _ in range(n)
            ]
            started = time.perf_counter()
            tasks = [
                asyncio.create_task(watch(clients[i % len(clients)], screen, conversation_id))
                for i, screen in enumerate(screens)
            ]
            try:
                waiting = [asyncio.create_task(s.ready.wait()) for s in screens]
                _done, late = await asyncio.wait(waiting, timeout=60)
                open_ms = (time.perf_counter() - started) * 1000
                for task in late:
                    task.cancel()
                errors = [s.error for s in screens if s.error]
                if late:
                    errors.append(f"{len(late)} of {len(screens)} screens not ready within 60 s")
                await asyncio.sleep(CHECK_SECONDS + 1)  # the viewers' presence announcements settle
                cpu, (xacts, connections) = cpu_seconds(server_pid), await database_activity(url)
                events, idle_from = sum(len(s.heard) for s in screens), time.perf_counter()
                await asyncio.sleep(idle)
                cpu_after, (xacts_after, _connections) = cpu_seconds(server_pid), await database_activity(url)
                idle_events = sum(len(s.heard) for s in screens) - events
                idle_kinds: dict[str, int] = {}
                for screen in screens:
                    for at, name in screen.heard:
                        if at >= idle_from:
                            idle_kinds[name] = idle_kinds.get(name, 0) + 1
                timings: dict[str, dict[str, list[float]]] = {}
                missed: dict[str, int] = {}
                for _ in range(rounds):
                    for kind, (on_conversation, on_inbox) in FANOUT_TRIGGERS.items():
                        marks = [len(s.heard) for s in screens]
                        since = time.perf_counter()
                        entry = timings.setdefault(
                            kind, {"request": [], "conversation": [], **({"inbox": []} if on_inbox else {})}
                        )
                        try:
                            entry["request"].append(await triggers.run(kind))
                        except (httpx.HTTPError, RuntimeError) as exc:  # it may still have been done
                            errors.append(f"{kind}: {type(exc).__name__} {exc}")
                        deadline = since + FANOUT_WAIT_SECONDS
                        for where, event in (("conversation", on_conversation), ("inbox", on_inbox)):
                            if event is None:
                                continue
                            chosen = [
                                i
                                for i, s in enumerate(screens)
                                if s.conversation == (where == "conversation")
                            ]
                            found = await heard_after(
                                [screens[i] for i in chosen],
                                event,
                                since,
                                [marks[i] for i in chosen],
                                deadline,
                            )
                            entry[where].extend(f for f in found if f is not None)
                            missed[f"{kind} · {where}"] = missed.get(f"{kind} · {where}", 0) + found.count(
                                None
                            )
                        # what a poll of the activity may still say about this one passes first
                        await asyncio.sleep(CHECK_SECONDS + 0.5)
                errors += [s.error for s in screens if s.error and s.error not in errors]
                console.print(f"  {n} + {n} screens: done, {sum(missed.values())} events missed")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for client in clients:
                    await client.aclose()
            results.append(
                {
                    "streams": n,
                    "inbox_streams": n,
                    "sessions": len(clients),
                    "open_ms": round(open_ms, 1),
                    "idle_seconds": idle,
                    "idle_server_cpu_percent": round((cpu_after - cpu) / idle * 100, 1),
                    "idle_db_transactions_per_second": round((xacts_after - xacts) / idle, 1),
                    "idle_events_per_second": round(idle_events / idle, 1),
                    "idle_events": idle_kinds,
                    "db_connections": connections,
                    "events": {
                        kind: {where: summarise(values) for where, values in entry.items()}
                        for kind, entry in timings.items()
                    },
                    "missed": missed,
                    "errors": errors[:10],
                }
            )
            await asyncio.sleep(CHECK_SECONDS + 1)  # the closed screens' "left" announcements pass
    return results


def query_of(params: dict[str, Any]) -> inbox.InboxQuery:
    return inbox.InboxQuery(
        view=inbox.View(params.get("view", "all")),
        states=tuple(params.get("state", ())),
        channel=params.get("channel"),
        team=params.get("team"),
        assignee=params.get("assignee"),
        label=params.get("label"),
        language=params.get("language"),
        search=params.get("search"),
    )


def http_params(params: dict[str, Any], limit: int) -> list[tuple[str, str]]:
    pairs = [("limit", str(limit))]
    for key, value in params.items():
        if key == "which":
            continue
        pairs.extend((key, v) for v in (value if isinstance(value, list) else [value]))
    return pairs


async def conversation_ids(db: Database, company_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The conversation with the most messages, and the most recently active open one."""
    async with db.autocommit() as connection:
        largest = (
            await connection.exec_driver_sql(
                "SELECT conversation_id FROM messages WHERE company_id = %s"
                " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                (company_id,),
            )
        ).scalar_one()
        newest = (
            await connection.exec_driver_sql(
                "SELECT id FROM conversations WHERE company_id = %s AND state <> 'resolved'"
                " ORDER BY updated_at DESC LIMIT 1",
                (company_id,),
            )
        ).scalar_one()
    return {"largest": largest, "newest": newest}


async def conversation_view(db: Database, company_id: uuid.UUID, conversation_id: uuid.UUID) -> int:
    """What the conversation view reads: the conversation, its transitions and labels, its
    latest 100 messages (the API's two requests)."""
    async with db.transaction(company_id) as session:
        await conversations.get_conversation(session, conversation_id)
        await conversations.list_transitions(session, conversation_id)
        await label_service.conversation_labels(session, conversation_id)
    async with db.transaction(company_id) as session:
        messages = await conversations.list_messages(session, conversation_id, limit=100)
    return len(messages)


async def measure_service(
    db: Database, company: Company, all_cases: Sequence[Case], *, repeat: int, limit: int
) -> tuple[dict[str, list[float]], dict[str, int], dict[str, dict[str, str | None]], set[uuid.UUID]]:
    """Each case ``repeat`` times through the service functions (after one untimed run); the
    rows each listed (the views' counts of a count)."""
    principal = Principal(company_id=company.id, role=Role.agent, user_id=company.agent_id)
    targets = await conversation_ids(db, company.id)
    timings: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    shown: dict[str, dict[str, str | None]] = {}
    seen: set[uuid.UUID] = set()
    for case in all_cases:
        query = query_of(case.params)
        cursor: str | None = None
        if case.kind == "page2":
            async with db.transaction(company.id) as session:
                _items, cursor = await inbox.list_inbox(session, principal, query, limit=limit)

        async def run(case: Case = case, query: inbox.InboxQuery = query, cursor: str | None = cursor) -> int:
            if case.kind == "conversation":
                return await conversation_view(db, company.id, targets[case.params["which"]])
            async with db.transaction(company.id) as session:
                if case.kind == "counts":
                    counts = await inbox.count_views(session, principal, query)
                    shown[case.name] = {
                        view.value: f"{c.count:,}{'+' if c.capped else ''}" if c else None
                        for view, c in counts.items()
                    }
                    return sum(c.count for c in counts.values() if c is not None)
                items, _next = await inbox.list_inbox(session, principal, query, cursor=cursor, limit=limit)
                seen.update(item.row.conversation.id for item in items)
                return len(items)

        rows[case.name] = await run()
        timings[case.name] = await timed(run, repeat)
    return timings, rows, shown, seen


async def timed(run: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        found.append((time.perf_counter() - started) * 1000)
    return found


def measure_http(
    base_url: str,
    company: Company,
    all_cases: Sequence[Case],
    targets: dict[str, uuid.UUID],
    *,
    repeat: int,
    limit: int,
) -> tuple[dict[str, list[float]], dict[str, int], set[uuid.UUID], list[str]]:
    """Each case ``repeat`` times through the API of ``atende serve`` (one client, after one
    untimed request): the time from sending the request to the last byte of the answer."""
    headers = {"Authorization": f"Bearer {company.agent_key}"}
    timings: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    seen: set[uuid.UUID] = set()
    errors: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for case in all_cases:
            params = http_params(case.params, limit)
            if case.kind == "conversation":
                ident = targets[case.params["which"]]
                paths = [
                    (f"/v1/conversations/{ident}", []),
                    (f"/v1/conversations/{ident}/messages", [("limit", "100")]),
                ]
            elif case.kind == "counts":
                paths = [("/v1/conversations/counts", [p for p in params if p[0] != "limit"])]
            else:
                if case.kind == "page2":
                    first = http.get("/v1/conversations", params=params).json()
                    params = [*params, ("cursor", first["next_cursor"] or "")]
                paths = [("/v1/conversations", params)]

            def run(paths: list[tuple[str, list[tuple[str, str]]]] = paths, name: str = case.name) -> int:
                found = 0
                for path, query in paths:
                    response = http.get(path, params=query)
                    if response.status_code != 200:
                        errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                        continue
                    body = response.json()
                    items = body.get("items") if isinstance(body, dict) else None
                    if items is not None:
                        seen.update(uuid.UUID(item["id"]) for item in items if "contact_name" in item)
                        found += len(items)
                return found

            rows[case.name] = run()
            found = []
            for _ in range(repeat):
                started = time.perf_counter()
                run()
                found.append((time.perf_counter() - started) * 1000)
            timings[case.name] = found
    return timings, rows, seen, errors


async def walk_view(db: Database, company: Company, view: inbox.View, page: int) -> dict[str, Any]:
    """Every conversation of a view, page after page: each exactly once, as many as it holds."""
    principal = Principal(company_id=company.id, role=Role.agent, user_id=company.agent_id)
    query = inbox.InboxQuery(view=view)
    listed: list[uuid.UUID] = []
    cursor: str | None = None
    started = time.monotonic()
    while True:
        async with db.transaction(company.id) as session:
            items, cursor = await inbox.list_inbox(session, principal, query, cursor=cursor, limit=page)
        listed.extend(item.row.conversation.id for item in items)
        if cursor is None:
            break
    seconds = time.monotonic() - started
    async with db.autocommit() as connection:
        expected = (
            await connection.exec_driver_sql(
                "SELECT count(*) FROM conversations WHERE company_id = %s"
                " AND state = 'waiting_human' AND assignee_id IS NULL",
                (company.id,),
            )
        ).scalar_one()
    return {
        "view": view.value,
        "page_size": page,
        "listed": len(listed),
        "distinct": len(set(listed)),
        "expected": int(expected),
        "seconds": round(seconds, 2),
        "ok": len(listed) == len(set(listed)) == int(expected),
    }


async def isolation(
    db: Database, company: Company, other: Company, seen: set[uuid.UUID], marker: str
) -> dict[str, Any]:
    """No row listed was another company's; the word only the other company's customers
    write finds nothing here, and something there."""
    async with db.autocommit() as connection:
        foreign = (
            await connection.exec_driver_sql(
                "SELECT count(*) FROM conversations WHERE id = ANY(%s) AND company_id <> %s",
                (list(seen), company.id),
            )
        ).scalar_one()
    found = {}
    for who in (company, other):
        principal = Principal(company_id=who.id, role=Role.agent, user_id=who.agent_id)
        async with db.transaction(who.id) as session:
            counts = await inbox.count_views(session, principal, inbox.InboxQuery(search=marker))
        everything = counts[inbox.View.all]
        found[who.slug] = everything.count if everything else 0
    return {
        "rows_checked": len(seen),
        "rows_of_another_company": int(foreign),
        "marker": marker,
        "marker_found_here": found[company.slug],
        "marker_found_there": found[other.slug],
        "ok": foreign == 0 and found[company.slug] == 0 and found[other.slug] > 0,
    }


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    migrate.upgrade(url)
    secret_key = secrets.token_urlsafe(32)
    texts = read_texts(args.data_dir)
    rng = random.Random(args.seed)
    main_sizes = Sizes(args.conversations, args.open, args.messages, args.agents, args.teams, args.labels)
    other_sizes = Sizes(
        args.other_conversations,
        args.other_conversations * args.open // max(1, args.conversations),
        args.other_messages,
        max(2, args.agents // 4),
        max(1, args.teams // 2),
        max(1, args.labels // 2),
    )
    marker = f"bicicletaria{rng.randrange(10**6)}"

    async def setup() -> tuple[Company, Company]:
        db = Database(url, pool_size=2)
        try:
            return (
                await create_company(db, secret_key, "inbox", main_sizes),
                await create_company(db, secret_key, "other", other_sizes),
            )
        finally:
            await db.dispose()

    company, other = asyncio.run(setup())
    console.print(
        f"filling {company.slug}: {args.conversations:,} conversations ({args.open:,} open), "
        f"{args.messages:,} messages; {other.slug}: {args.other_conversations:,}, {args.other_messages:,}"
    )
    started = time.monotonic()
    shared: dict[str, float] = {}
    # another's database keeps its index: the filling then maintains it, row by row
    rebuilt = search_index_rebuilt(url, shared) if args.database_url is None else nullcontext()
    with rebuilt:
        fill(url, company, main_sizes, texts, seed=args.seed % 1)
        fill(url, other, other_sizes, texts, seed=(args.seed + 0.5) % 1, marker=marker)
    fill_deliveries(url, company, args.deliveries, seed=args.seed % 1)
    fill_deliveries(url, other, args.deliveries // 10, seed=(args.seed + 0.5) % 1)
    fill_gaps(url, company, args.gap_share, 300, seed=args.seed % 1)
    fill_gaps(url, other, args.gap_share, 30, seed=(args.seed + 0.5) % 1)
    fill_audit(url, company, args.audit_events, seed=args.seed % 1)
    fill_audit(url, other, args.audit_events // 10, seed=(args.seed + 0.5) % 1)
    fill_events(url, company, args.events, seed=args.seed % 1)
    fill_events(url, other, args.events // 10, seed=(args.seed + 0.5) % 1)
    vacuum_analyze(url, shared)
    fill_seconds = round(time.monotonic() - started, 1)
    asyncio.run(refresh_analytics(url, (company, other)))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE analytics_conversation_facts")  # as autovacuum would have
    terms = pick_terms(url, company.id)
    all_cases = cases(company, terms)

    async def in_process() -> dict[str, Any]:
        db = Database(url, pool_size=2)
        try:
            timings, rows, shown, seen = await measure_service(
                db, company, all_cases, repeat=args.repeat, limit=args.limit
            )
            walk = await walk_view(db, company, inbox.View.unassigned, 200)
            targets = await conversation_ids(db, company.id)
            return {
                "timings": timings,
                "rows": rows,
                "shown": shown,
                "seen": seen,
                "walk": walk,
                "targets": targets,
            }
        finally:
            await db.dispose()

    console.print(f"measuring {len(all_cases)} cases × {args.repeat} through the service functions")
    service = asyncio.run(in_process())
    http: dict[str, Any] = {"timings": {}, "rows": {}, "seen": set(), "errors": []}
    pages: dict[str, Any] = {"timings": {}, "bytes": {}, "errors": []}
    fanout: list[dict[str, Any]] = []
    the_pages = page_cases(company, terms)
    the_settings = settings_cases(company, delivery_halfway(url, company.webhook_ids[0]))
    the_settings += audit_cases(url, company)
    the_settings += logs_cases(busiest_event_conversation(url, company.id))
    settings: dict[str, Any] = {"timings": {}, "bytes": {}, "errors": []}
    the_analytics = analytics_cases(company, datetime.now(UTC).date())
    analytics: dict[str, Any] = {"timings": {}, "bytes": {}, "errors": []}
    if not args.no_http:
        port = free_port()
        command, env = atende_command(url, port, secret_key)
        with tempfile.TemporaryDirectory(prefix="atende-bench-serve-") as workdir:
            base_url = f"http://127.0.0.1:{port}"
            with server(command, env, Path(workdir), base_url + "/health/live") as server_pid:
                console.print(f"measuring {len(all_cases)} cases × {args.repeat} through {base_url}")
                timings, rows, seen, errors = measure_http(
                    base_url, company, all_cases, service["targets"], repeat=args.repeat, limit=args.limit
                )
                http = {"timings": timings, "rows": rows, "seen": seen, "errors": errors}
                console.print(f"measuring {len(the_pages)} dashboard pages × {args.repeat}, signed in")
                page_timings, page_bytes, page_errors = measure_pages(
                    base_url, company, the_pages, service["targets"], repeat=args.repeat
                )
                pages = {"timings": page_timings, "bytes": page_bytes, "errors": page_errors}
                console.print(
                    f"measuring {len(the_settings)} settings pages × {args.repeat}, signed in (admin)"
                )
                settings_timings, settings_bytes, settings_errors = measure_pages(
                    base_url,
                    company,
                    the_settings,
                    service["targets"],
                    repeat=args.repeat,
                    email=company.admin_email,
                )
                settings = {"timings": settings_timings, "bytes": settings_bytes, "errors": settings_errors}
                console.print(f"measuring the analytics page: {len(the_analytics)} cases × {args.repeat}")
                analytics_timings, analytics_bytes, analytics_errors = measure_pages(
                    base_url, company, the_analytics, service["targets"], repeat=args.repeat
                )
                analytics = {
                    "timings": analytics_timings,
                    "bytes": analytics_bytes,
                    "errors": analytics_errors,
                }
                if args.fanout:
                    console.print(
                        f"measuring live updates to {', '.join(map(str, args.fanout))} screens"
                        f" of a conversation (and as many of the inbox), {args.fanout_rounds} rounds"
                    )
                    fanout = asyncio.run(
                        measure_fanout(
                            base_url,
                            url,
                            server_pid,
                            company,
                            streams=args.fanout,
                            rounds=args.fanout_rounds,
                            idle=args.fanout_idle,
                        )
                    )

    async def check_isolation() -> dict[str, Any]:
        db = Database(url, pool_size=2)
        try:
            return await isolation(db, company, other, service["seen"] | http["seen"], marker)
        finally:
            await db.dispose()

    isolated = asyncio.run(check_isolation())
    results = {}
    for case in all_cases:
        entry: dict[str, Any] = {"kind": case.kind, "params": case.params, "rows": service["rows"][case.name]}
        if case.name in service["shown"]:
            entry["counts"] = service["shown"][case.name]
        entry["service_ms"] = summarise(service["timings"][case.name])
        if case.name in http["timings"]:
            entry["http_ms"] = summarise(http["timings"][case.name])
            entry["http_rows"] = http["rows"][case.name]
        worst = max(entry["service_ms"]["p95"], entry.get("http_ms", {}).get("p95", 0.0))
        entry["target_met"] = worst < TARGET_P95_MS
        results[case.name] = entry

    def timed_pages(measured: dict[str, Any], the_cases: Sequence[Case]) -> dict[str, Any]:
        return {
            case.name: {
                "kind": case.kind,
                "params": case.params,
                "bytes": measured["bytes"][case.name],
                "http_ms": summarise(measured["timings"][case.name]),
                "target_met": summarise(measured["timings"][case.name])["p95"] < TARGET_P95_MS,
            }
            for case in the_cases
            if case.name in measured["timings"]
        }

    page_results = timed_pages(pages, the_pages)
    settings_results = timed_pages(settings, the_settings)
    analytics_results = timed_pages(analytics, the_analytics)
    return {
        "benchmark": "dashboard",
        "machine": machine(load_at_start),
        "sizes": {
            "conversations": args.conversations,
            "open": args.open,
            "messages": args.messages,
            "agents": args.agents,
            "teams": args.teams,
            "labels": args.labels,
            "webhook_deliveries": args.deliveries,
            "audit_events": args.audit_events,
            "app_events": args.events,
            "other_company": {"conversations": args.other_conversations, "messages": args.other_messages},
            "texts": len(texts),
        },
        "fill_seconds": {
            "total": fill_seconds,
            **shared,
            company.slug: company.fill_seconds,
            other.slug: other.fill_seconds,
        },
        "repeat": args.repeat,
        "page_size": args.limit,
        "terms": terms.__dict__,
        "target": f"p95 < {TARGET_P95_MS:g} ms (service and HTTP)",
        "target_met": all(
            r["target_met"]
            for r in [
                *results.values(),
                *page_results.values(),
                *settings_results.values(),
                *analytics_results.values(),
            ]
        )
        and not http["errors"]
        and not pages["errors"]
        and not settings["errors"]
        and not analytics["errors"],
        "results": results,
        "pages": page_results,
        "settings": settings_results,
        "analytics": analytics_results,
        "http_errors": http["errors"] + pages["errors"] + settings["errors"] + analytics["errors"],
        "fanout": fanout,
        "walk": service["walk"],
        "isolation": isolated,
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    for name, r in result["results"].items():
        service, http = r["service_ms"], r.get("http_ms")
        counted = r.get("counts")
        rows.append(
            (
                name,
                " · ".join(str(n) for n in counted.values() if n) if counted else f"{r['rows']:,}",
                ms(service["p50"]),
                ms(service["p95"]),
                ms(http["p50"]) if http else "—",
                ms(http["p95"]) if http else "—",
                "[green]ok[/green]" if r["target_met"] else "[red]SLOW[/red]",
            )
        )
    sizes = result["sizes"]
    title = (
        f"Inbox — {sizes['conversations']:,} conversations ({sizes['open']:,} open), "
        f"{sizes['messages']:,} messages; page of {result['page_size']}, {result['repeat']} runs each"
    )
    columns = ("case", "rows", "service p50 ms", "p95", "HTTP p50 ms", "p95", f"p95 < {TARGET_P95_MS:g}")
    console.print(result_table(title, columns, rows))
    if result["pages"]:
        page_rows = [
            (
                name,
                f"{r['bytes']:,}",
                ms(r["http_ms"]["p50"]),
                ms(r["http_ms"]["p95"]),
                "[green]ok[/green]" if r["target_met"] else "[red]SLOW[/red]",
            )
            for name, r in result["pages"].items()
        ]
        console.print(
            result_table(
                "Dashboard pages through atende serve, signed in (request to the last byte of the HTML)",
                ("page", "bytes", "p50 ms", "p95 ms", f"p95 < {TARGET_P95_MS:g}"),
                page_rows,
            )
        )
    if result["settings"]:
        settings_rows = [
            (
                name.removeprefix("settings: "),
                f"{r['bytes']:,}",
                ms(r["http_ms"]["p50"]),
                ms(r["http_ms"]["p95"]),
                "[green]ok[/green]" if r["target_met"] else "[red]SLOW[/red]",
            )
            for name, r in result["settings"].items()
        ]
        deliveries = result["sizes"]["webhook_deliveries"]
        console.print(
            result_table(
                "Settings pages through atende serve, signed in as an admin (request to the last byte; "
                f"the busiest webhook's log holds {deliveries:,} deliveries; /app/logs, "
                f"{result['sizes']['app_events']:,} events)",
                ("settings page", "bytes", "p50 ms", "p95 ms", f"p95 < {TARGET_P95_MS:g}"),
                settings_rows,
            )
        )
    if result.get("analytics"):
        analytics_rows = [
            (
                name.removeprefix("analytics: "),
                f"{r['bytes']:,}",
                ms(r["http_ms"]["p50"]),
                ms(r["http_ms"]["p95"]),
                "[green]ok[/green]" if r["target_met"] else "[red]SLOW[/red]",
            )
            for name, r in result["analytics"].items()
        ]
        console.print(
            result_table(
                "The analytics page through atende serve, signed in (every chart and its table; "
                "figures pre-aggregated per conversation by analytics:refresh)",
                ("analytics page", "bytes", "p50 ms", "p95 ms", f"p95 < {TARGET_P95_MS:g}"),
                analytics_rows,
            )
        )
    if result["fanout"]:
        report_fanout(result["fanout"])
    met = "[green]met[/green]" if result["target_met"] else "[red]missed[/red]"
    console.print(f"target {result['target']}: {met}")
    for error in result["http_errors"][:10]:
        console.print(f"[red]HTTP error[/red] {error}")
    walk, iso = result["walk"], result["isolation"]
    console.print(
        f"walk of '{walk['view']}' by pages of {walk['page_size']}: {walk['listed']:,} listed, "
        f"{walk['distinct']:,} distinct, {walk['expected']:,} expected in {walk['seconds']} s "
        + ("[green]ok[/green]" if walk["ok"] else "[red]FAILED[/red]")
    )
    console.print(
        f"isolation: {iso['rows_checked']:,} rows listed, "
        f"{iso['rows_of_another_company']} of another company; "
        f"the other company's word found {iso['marker_found_here']} here, {iso['marker_found_there']} there "
        + ("[green]ok[/green]" if iso["ok"] else "[red]FAILED[/red]")
    )
    fills = result["fill_seconds"]
    console.print(f"fill: {fills['total']} s {json.dumps({k: v for k, v in fills.items() if k != 'total'})}")
    console.print(
        f"machine: {result['machine']['cpus']} CPUs shared by PostgreSQL, the server and this process; "
        f"load average {result['machine']['load_average_at_start']} at the start, "
        f"{result['machine']['load_average']} at the end (other processes skew the numbers)"
    )


def report_fanout(fanout: list[dict[str, Any]]) -> None:
    rows = []
    for level in fanout:
        for kind, entry in level["events"].items():
            request = entry["request"]
            for where in ("conversation", "inbox"):
                if where not in entry:
                    continue
                heard = entry[where]
                event = FANOUT_TRIGGERS[kind][0 if where == "conversation" else 1]
                rows.append(
                    (
                        f"{level['streams']} + {level['inbox_streams']}",
                        kind,
                        f"{'conv.' if where == 'conversation' else where}: {event}",
                        f"{heard['n']:,}",
                        ms(heard["p50"]),
                        ms(heard["p95"]),
                        ms(heard["max"]),
                        str(level["missed"].get(f"{kind} · {where}", 0)),
                        ms(request["p50"]),
                    )
                )
    console.print(
        result_table(
            "Live updates (GET /app/live) through atende serve, N screens on a conversation + N on the "
            "inbox: "
            "from the triggering request's start to each screen hearing its event",
            (
                "N + N",
                "trigger",
                "screen: event",
                "heard",
                "p50 ms",
                "p95 ms",
                "max ms",
                "missed",
                "request p50",
            ),
            rows,
        )
    )
    for level in fanout:
        console.print(
            f"{level['streams']} + {level['inbox_streams']} screens ({level['sessions']} agents' sessions): "
            f"open in {level['open_ms']:,.0f} ms; open and idle for {level['idle_seconds']:g} s, "
            f"the server used {level['idle_server_cpu_percent']}% of a CPU and the database committed "
            f"{level['idle_db_transactions_per_second']} transactions/s, the screens heard "
            f"{level['idle_events_per_second']} events/s (presence); "
            f"{level['db_connections']} database connections"
        )
        for error in level["errors"]:
            console.print(f"[red]live error[/red] {error}")


def fanout_levels(value: str) -> list[int]:
    """``1,25,100``: the numbers of screens, each at least 1 (``0`` or ``none``: no fan-out)."""
    if value.strip().lower() in ("", "0", "none"):
        return []
    try:
        levels = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {value!r}") from None
    if min(levels) < 1:
        raise argparse.ArgumentTypeError("each number of screens must be at least 1")
    return levels


# --quick: a development run of a minute or two; options given explicitly still win
QUICK = {
    "conversations": 2_000,
    "open": 800,
    "messages": 20_000,
    "other_conversations": 200,
    "other_messages": 2_000,
    "deliveries": 2_000,
    "audit_events": 2_000,
    "events": 5_000,
    "repeat": 3,
    "fanout": [1, 10],
    "fanout_rounds": 2,
    "fanout_idle": 4.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard",
        description="p50/p95 of the inbox's list (every view and filter, text search included), its "
        "counts, a second page and the conversation view, over a company of 100,000 conversations "
        "and 1,000,000 messages beside a second company; through the service functions and the "
        "HTTP API of `atende serve`; then the dashboard's pages (inbox, conversation, settings) "
        "signed in, and live updates to many screens. Starts a throw-away embedded PostgreSQL "
        "unless --database-url is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--conversations", type=int, default=100_000, help="the company's conversations")
    parser.add_argument("--open", type=int, default=40_000, help="of which open (not resolved)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="the company's messages")
    parser.add_argument("--other-conversations", type=int, default=10_000, help="the second company's")
    parser.add_argument("--other-messages", type=int, default=100_000, help="the second company's")
    parser.add_argument("--agents", type=int, default=20, help="agents of the company")
    parser.add_argument("--teams", type=int, default=5, help="teams of the company")
    parser.add_argument("--labels", type=int, default=20, help="labels of the company")
    parser.add_argument(
        "--deliveries",
        type=int,
        default=50_000,
        help="deliveries in the log of the company's busiest webhook (its second: a twentieth; the "
        "second company's: a tenth)",
    )
    parser.add_argument(
        "--gap-share",
        type=float,
        default=0.03,
        help="share of the customers' messages handed off for weak evidence (the knowledge gaps)",
    )
    parser.add_argument(
        "--audit-events",
        type=int,
        default=200_000,
        help="rows of the company's audit log (the second company's: a tenth)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="application events of the company (/app/logs; the second company's: a tenth)",
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each case (after one untimed)")
    parser.add_argument("--limit", type=int, default=50, help="page size")
    parser.add_argument("--seed", type=float, default=0.42, help="seed of the generated data")
    parser.add_argument("--no-http", action="store_true", help="measure the service functions only")
    parser.add_argument(
        "--fanout",
        type=fanout_levels,
        default=[1, 25, 100],
        help="live updates: numbers of screens open on one conversation (and as many on the inbox), "
        "comma-separated; 0 for none",
    )
    parser.add_argument("--fanout-rounds", type=int, default=5, help="times each live-update trigger runs")
    parser.add_argument(
        "--fanout-idle",
        type=float,
        default=10.0,
        help="seconds the screens stay idle while the load is measured",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a development run: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()).replace("[1, 10]", "1,10")
        + " (options given win)",
    )
    add_data_dir_argument(parser)
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (two companies are created and left there) instead of a throw-away one",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    require_data(parser, args.data_dir, QUESTION_FILES)
    if not 0 <= args.open <= args.conversations:
        parser.error("--open must be between 0 and --conversations")
    if min(args.fanout_rounds, args.fanout_idle) <= 0:
        parser.error("--fanout-rounds and --fanout-idle must be positive")
    if min(args.deliveries, args.audit_events) < 0:
        parser.error("--deliveries and --audit-events must not be negative")
    if min(args.deliveries, args.events) < 0:
        parser.error("--deliveries and --events must not be negative")
    if min(args.conversations, args.agents, args.teams, args.labels, args.repeat, args.limit) < 1:
        parser.error("--conversations, --agents, --teams, --labels, --repeat and --limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    run_on_postgres(argv, parse_args, benchmark, report)


if __name__ == "__main__":
    main()
