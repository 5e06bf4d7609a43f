"""The demo company "Loja Exemplo" (an online shop) with its knowledge base, an API key,
two people who sign in to the dashboard (its owner and an agent) and a few conversations in
every state (``demo.conversations``).

``seed`` is idempotent: the company, key, people and documents are created once and left as
they are on later starts (documents are re-indexed only when their files changed). The key
and the people's first passwords are derived from ``ATENDE_SECRET_KEY``, so that every start
can print them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from atende.channels import accounts
from atende.demo.conversations import seed_conversations
from atende.hours import DAYS
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for
from atende.knowledge.tasks import chunking
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.crypto import hash_token
from atende.tenancy.models import ApiKey, Company, Role, User

SLUG = "loja-exemplo"
KNOWLEDGE = Path(__file__).parent / "knowledge"
DEMO_KEY_PREFIX = "atd_demoloja"


# the demo's people: (role, e-mail, name)
OWNER = (Role.owner, "dona@loja-exemplo.example", "Olívia Dona")
AGENT = (Role.agent, "ana@loja-exemplo.example", "Ana Atendente")


@dataclass(frozen=True)
class DemoPerson:
    email: str
    password: str


@dataclass(frozen=True)
class DemoInfo:
    company_id: str
    widget_key: str | None  # its web chat account's (None: disabled)
    api_key: str
    owner: DemoPerson
    agent: DemoPerson


def demo_api_key(secret_key: str) -> str:
    """The demo key is derived from the secret, so it can be printed on every start."""
    tail = hmac.new(secret_key.encode(), b"atende-demo-key", hashlib.sha256).hexdigest()[:40]
    return f"{DEMO_KEY_PREFIX}_{tail}"


def demo_password(secret_key: str, email: str) -> str:
    """A demo person's first password, derived from the secret like the demo key."""
    return hmac.new(secret_key.encode(), f"atende-demo-user:{email}".encode(), hashlib.sha256).hexdigest()[
        :16
    ]


DEMO_HOURS = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        **{day: [{"start": "08:00", "end": "18:00"}] for day in DAYS[:5]},
        "saturday": [{"start": "09:00", "end": "13:00"}],
    },
    "holidays": {"country": "BR"},
}


async def seed(runtime: Runtime) -> DemoInfo:
    settings = runtime.settings
    async with runtime.db.transaction() as session:
        company = await session.scalar(select(Company).where(Company.slug == SLUG))
        if company is None:
            company = await tenancy.create_company(
                session, name="Loja Exemplo", slug=SLUG, default_language="pt"
            )
            # what its knowledge base says: weekdays 8-18, Saturdays 9-13, no national holidays;
            # out of hours the assistant keeps answering and messages wait for the team
            company.settings = {"hours": DEMO_HOURS, "handoff": {"bot_answers_while_closed": True}}
        key = demo_api_key(runtime.secret_key)
        if await session.scalar(select(ApiKey.id).where(ApiKey.prefix == DEMO_KEY_PREFIX)) is None:
            session.add(
                ApiKey(
                    company_id=company.id,
                    name="demo key",
                    prefix=DEMO_KEY_PREFIX,
                    key_hash=hash_token(runtime.secret_key, key),
                    role=Role.admin.value,
                )
            )
        people = []
        for role, email, name in (OWNER, AGENT):
            password = demo_password(runtime.secret_key, email)
            user_id = await session.scalar(select(User.id).where(User.email == email))
            if user_id is None:
                user_id = (
                    await tenancy.create_user(
                        session, company_id=company.id, email=email, password=password, role=role, name=name
                    )
                ).id
            people.append(DemoPerson(email, password))
        agent_id = user_id  # the last of the people: the demo agent
        company_id = company.id
        widget_key = await accounts.first_external_id(session, company_id, "webchat")
    embedder = embedder_for(runtime, None)
    for path in sorted(KNOWLEDGE.glob("*/*.md")):
        await knowledge.ingest(
            runtime.db,
            company_id,
            source=f"demo/{path.parent.name}/{path.name}",
            data=path.read_bytes(),
            max_bytes=settings.max_document_bytes,
            chunking=chunking(runtime),
            embedder=embedder,
            lang=path.parent.name,
        )
    assert agent_id is not None
    await seed_conversations(runtime, company_id, agent_id)
    return DemoInfo(
        company_id=str(company_id), widget_key=widget_key, api_key=key, owner=people[0], agent=people[1]
    )
