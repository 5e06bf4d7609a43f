"""The one scoping mechanism (``atende.db.session``) against real PostgreSQL.

Two companies each get a contact, a conversation and a message written straight through
their company sessions; every test then reads or writes through one company's session and
checks, through the other's, that nothing crossed over.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from atende.conversations.models import Contact, Conversation, Message
from atende.db.scope import company_of
from atende.db.session import CrossCompanyWrite, UnscopedQuery
from atende.runtime import Runtime
from atende.tenancy import service as tenancy


@dataclass(frozen=True)
class Seeded:
    company_id: uuid.UUID
    contact_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID


async def seed_company(runtime: Runtime) -> Seeded:
    slug = f"scope-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug)
    async with runtime.db.transaction(company.id) as session:
        contact = Contact(id=uuid.uuid4(), channel="api", external_id="ana")
        conversation = Conversation(id=uuid.uuid4(), contact_id=contact.id, channel="api", state="bot")
        message = Message(
            id=uuid.uuid4(), conversation_id=conversation.id, channel="api", author="customer", text="oi"
        )
        session.add(contact)
        await session.flush()
        session.add(conversation)
        await session.flush()
        session.add(message)
    return Seeded(company.id, contact.id, conversation.id, message.id)


@pytest.fixture
async def a(runtime: Runtime) -> Seeded:
    return await seed_company(runtime)


@pytest.fixture
async def b(runtime: Runtime) -> Seeded:
    return await seed_company(runtime)


@pytest.fixture
async def plain_session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session bound to no company and not declared a platform session."""
    async with AsyncSession(runtime.db.engine) as session:
        yield session


async def test_a_company_session_selects_only_its_own_rows(runtime: Runtime, a: Seeded, b: Seeded) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        conversations = list(await session.scalars(select(Conversation)))
        message_ids = set(await session.scalars(select(Message.id)))
        companies = set(await session.scalars(select(Conversation.company_id).distinct()))
    assert [c.id for c in conversations] == [a.conversation_id]
    assert message_ids == {a.message_id}
    assert companies == {a.company_id}


async def test_each_company_session_uses_its_own_company_id_not_a_cached_one(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    # the scoping criterion is a cached lambda: the id must still be bound per session
    for seeded in (a, b, a):
        async with runtime.db.transaction(seeded.company_id) as session:
            ids = list(await session.scalars(select(Conversation.id)))
        assert ids == [seeded.conversation_id]


async def test_counts_and_joins_through_a_company_session_see_only_its_rows(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        counted = await session.scalar(select(func.count()).select_from(Message))
        counted_by_where = await session.scalar(select(func.count()).where(Message.author == "customer"))
        joined = list(
            await session.execute(
                select(Message.id, Contact.external_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Contact, Contact.id == Conversation.contact_id)
            )
        )
        other = aliased(Conversation)
        via_alias = list(await session.scalars(select(other.id)))
        in_subquery = list(
            await session.scalars(
                select(Conversation.id).where(Conversation.id.in_(select(Message.conversation_id)))
            )
        )
    assert counted == 1
    assert counted_by_where == 1
    assert [tuple(row) for row in joined] == [(a.message_id, "ana")]
    assert via_alias == [a.conversation_id]
    assert in_subquery == [a.conversation_id]


async def test_get_of_another_companys_id_returns_none(runtime: Runtime, a: Seeded, b: Seeded) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        assert await session.get(Conversation, b.conversation_id) is None
        assert await session.get(Message, b.message_id) is None
        assert await session.get(Contact, b.contact_id) is None
        assert await session.get(Conversation, a.conversation_id) is not None


async def test_an_update_statement_through_a_company_session_leaves_other_companies_untouched(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        await session.execute(update(Conversation).values(state="resolved"))
        await session.execute(
            update(Message).where(Message.id == b.message_id).values(text="overwritten by A")
        )
    async with runtime.db.transaction(a.company_id) as session:
        assert await session.scalar(select(Conversation.state)) == "resolved"
    async with runtime.db.transaction(b.company_id) as session:
        assert await session.scalar(select(Conversation.state)) == "bot"
        assert await session.scalar(select(Message.text)) == "oi"


async def test_a_delete_statement_through_a_company_session_leaves_other_companies_untouched(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        await session.execute(delete(Message).where(Message.id.in_([a.message_id, b.message_id])))
        await session.execute(delete(Conversation))
    async with runtime.db.transaction(a.company_id) as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
    async with runtime.db.transaction(b.company_id) as session:
        assert await session.get(Message, b.message_id) is not None
        assert await session.get(Conversation, b.conversation_id) is not None


async def test_a_platform_session_sees_every_company(runtime: Runtime, a: Seeded, b: Seeded) -> None:
    async with runtime.db.transaction() as session:
        ids = set(
            await session.scalars(
                select(Conversation.id).where(Conversation.company_id.in_([a.company_id, b.company_id]))
            )
        )
    assert ids == {a.conversation_id, b.conversation_id}


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(select(Conversation), id="select-entity"),
        pytest.param(select(Message.id), id="select-column"),
        pytest.param(select(func.count()).select_from(Message), id="count-select-from"),
        pytest.param(select(func.count()).where(Message.author == "customer"), id="count-where"),
        pytest.param(update(Conversation).values(state="resolved"), id="update"),
        pytest.param(delete(Message), id="delete"),
    ],
)
async def test_a_plain_session_querying_company_rows_raises_unscoped_query(
    plain_session: AsyncSession, a: Seeded, statement: object
) -> None:
    with pytest.raises(UnscopedQuery):
        await plain_session.execute(statement)  # type: ignore[call-overload]


async def test_a_plain_session_may_query_tables_that_belong_to_no_company(
    plain_session: AsyncSession, a: Seeded
) -> None:
    from atende.tenancy.models import Company

    assert await plain_session.get(Company, a.company_id) is not None


async def test_company_of_a_platform_session_raises_unscoped_query(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        with pytest.raises(UnscopedQuery):
            company_of(session)


async def test_a_new_row_without_company_id_is_stamped_with_the_session_company(
    runtime: Runtime, a: Seeded
) -> None:
    async with runtime.db.transaction(a.company_id) as session:
        contact = Contact(channel="api", external_id="stamped")
        session.add(contact)
        await session.flush()
        assert contact.company_id == a.company_id


async def test_adding_a_row_of_another_company_raises_cross_company_write(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async def add_intruder() -> None:
        async with runtime.db.transaction(a.company_id) as session:
            session.add(Contact(company_id=b.company_id, channel="api", external_id="intruder"))
            await session.flush()

    with pytest.raises(CrossCompanyWrite):
        await add_intruder()
    async with runtime.db.transaction(b.company_id) as session:
        assert await session.scalar(select(Contact.id).where(Contact.external_id == "intruder")) is None


async def test_moving_a_row_to_another_company_raises_cross_company_write(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async def move_conversation() -> None:
        async with runtime.db.transaction(a.company_id) as session:
            conversation = await session.get(Conversation, a.conversation_id)
            assert conversation is not None
            conversation.company_id = b.company_id
            await session.flush()

    with pytest.raises(CrossCompanyWrite):
        await move_conversation()
    async with runtime.db.transaction(a.company_id) as session:
        assert await session.get(Conversation, a.conversation_id) is not None


async def test_merging_another_companys_row_into_a_company_session_raises_on_flush(
    runtime: Runtime, a: Seeded, b: Seeded
) -> None:
    async with runtime.db.transaction() as platform:
        foreign = await platform.get(Message, b.message_id)
    assert foreign is not None

    async def overwrite() -> None:
        async with runtime.db.transaction(a.company_id) as session:
            merged = await session.merge(foreign)
            merged.text = "overwritten by A"
            await session.flush()

    async def delete_without_loading() -> None:
        # merge(load=False) trusts the object: the DELETE would go out by primary key alone
        async with runtime.db.transaction(a.company_id) as session:
            await session.delete(await session.merge(foreign, load=False))
            await session.flush()

    with pytest.raises(CrossCompanyWrite):
        await overwrite()
    with pytest.raises(CrossCompanyWrite):
        await delete_without_loading()
    async with runtime.db.transaction(b.company_id) as session:
        stored = await session.get(Message, b.message_id)
        assert stored is not None
        assert stored.text == "oi"
