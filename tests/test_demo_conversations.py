"""The demo shop's conversations: a new user's inbox has one in every state (the bot's, one
handed to the team, one an agent works with a private note, one resolved, one snoozed), with
labels, made through intake and the agents' services; made once."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from atende.conversations.models import Conversation, Message
from atende.demo import DEMO_HOURS, KNOWLEDGE
from atende.demo.conversations import CONVERSATIONS, seed_conversations
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for
from atende.knowledge.tasks import chunking
from atende.runtime import Runtime
from atende.teams import inbox
from atende.tenancy.models import Company, Role
from atende.tenancy.service import Principal
from tests.fixtures.dashboard import make_team


async def test_the_demo_inbox_has_a_conversation_in_every_state(runtime: Runtime, live_server: str) -> None:
    team = await make_team(runtime, name="Demo")
    async with runtime.db.transaction(team.company_id) as session:
        company = await session.get_one(Company, team.company_id)
        # as the demo shop: its hours (the next business day to snooze until), the bot
        # answering while the team is closed, its knowledge base
        company.settings = {"hours": DEMO_HOURS, "handoff": {"bot_answers_while_closed": True}}
    for path in sorted(KNOWLEDGE.glob("*/*.md")):
        await knowledge.ingest(
            runtime.db,
            team.company_id,
            source=f"demo/{path.parent.name}/{path.name}",
            data=path.read_bytes(),
            max_bytes=runtime.settings.max_document_bytes,
            chunking=chunking(runtime),
            embedder=embedder_for(runtime, None),
            lang=path.parent.name,
        )
    assert await seed_conversations(runtime, team.company_id, team.agent.user_id) == len(CONVERSATIONS)
    assert await seed_conversations(runtime, team.company_id, team.agent.user_id) == 0  # once
    deadline = time.monotonic() + 20
    while True:  # the live server's worker runs the bot's turns
        async with runtime.db.transaction(team.company_id) as session:
            states = {c.contact_id: c for c in await session.scalars(select(Conversation))}
            answered = await session.scalar(select(func.count()).where(Message.author == "bot"))
        if answered == 3 or time.monotonic() > deadline:  # two answers and a handoff
            break
        await asyncio.sleep(0.3)
    found = sorted(c.state for c in states.values())
    assert found == ["bot", "bot", "human", "human", "resolved", "waiting_human"], found
    assert sum(1 for c in states.values() if c.snoozed_until is not None) == 1
    async with runtime.db.transaction(team.company_id) as session:
        authors = set(await session.scalars(select(Message.author)))
        me = Principal(company_id=team.company_id, role=Role.agent, user_id=team.agent.user_id)
        mine, _ = await inbox.list_inbox(session, me, inbox.InboxQuery(view=inbox.View.mine))
        counts = await inbox.count_views(session, me, inbox.InboxQuery())
    assert {"customer", "bot", "agent", "note"} <= authors
    assert [item.row.contact_name for item in mine] == ["Carla Lima"]  # the snoozed one waits out of sight
    assert counts[inbox.View.unassigned] is not None and counts[inbox.View.unassigned].count == 1
    assert [label.name for label in mine[0].row.labels] == ["troca"]
