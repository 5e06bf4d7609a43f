"""The inbox list through the live server: each view and filter returns exactly the right
conversations, most recent activity first, with what a row shows; counts per view, capped;
keyset pages that walk every conversation once while customers write; another company's
conversations never appear; bad filter values are a clear 422."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atende.conversations import inbox as conversations_inbox
from atende.conversations import labels
from atende.conversations.models import Contact, Conversation, ConversationLabel, Message
from atende.runtime import Runtime
from atende.teams import inbox
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from atende.tenancy.service import Principal
from tests.conftest import CompanyCtx
from tests.fixtures.dashboard import arrange_user

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=30)


@dataclass
class Spec:
    """One conversation to arrange: its messages are ``(author, text)``, in order."""

    key: str
    state: str
    channel: str = "api"
    language: str | None = "pt"
    team: str | None = None
    assignee: str | None = None
    labels: tuple[str, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()
    contact: str | None = None


# in activity order, oldest first (each an hour after the previous)
SPECS = (
    Spec("bot", "bot", messages=(("customer", "Olá, quero saber do meu pedido 4521"), ("customer", "Alô?")),
         contact="Ana Paula"),
    Spec("waiting_es", "waiting_human", channel="webchat", language="es", team="suporte", labels=("urgente",),
         messages=(("customer", "Hola, ¿dónde está mi pedido?"), ("bot", "Te paso con una persona."))),
    Spec("ana_pt", "human", team="suporte", assignee="ana", labels=("vip", "urgente"),
         messages=(("customer", "Minha encomenda chegou quebrada"), ("agent", "Vamos trocar, desculpe!"))),
    Spec("bia_en", "human", channel="email", language="en", team="vendas", assignee="bia",
         messages=(("customer", "Where is my refund?"),)),
    Spec("resolved", "resolved", messages=(("customer", "Obrigado, resolvido"), ("bot", "Por nada!"))),
    Spec("waiting_en", "waiting_human", language="en", team="vendas",
         messages=(("customer", "I need a person about the invoice"),)),
    Spec("ana_webchat", "human", channel="webchat", assignee="ana",
         messages=(("customer", "Não consigo acessar a conta"),)),
)  # fmt: skip


@dataclass
class Inbox:
    company: CompanyCtx
    ids: dict[str, str]  # spec key -> conversation id
    users: dict[str, uuid.UUID]
    ana: httpx.AsyncClient  # a personal agent key of Ana's
    ana_principal: Principal


async def arrange(
    runtime: Runtime,
    company_id: uuid.UUID,
    specs: tuple[Spec, ...],
    *,
    teams_by_slug: dict[str, uuid.UUID],
    users: dict[str, uuid.UUID],
    labels_by_name: dict[str, uuid.UUID],
    start: datetime = START,
) -> dict[str, str]:
    """Conversations as ``specs`` say, each an hour more recent than the one before; no job
    is queued, so nothing moves them afterwards."""
    ids = {}
    async with runtime.db.transaction(company_id) as session:
        for i, spec in enumerate(specs):
            at = start + timedelta(hours=i)
            contact = Contact(
                id=uuid.uuid4(),
                channel=spec.channel,
                external_id=f"{spec.key}-{i}",
                name=spec.contact or spec.key,
            )
            conversation = Conversation(
                id=uuid.uuid4(),
                contact_id=contact.id,
                channel=spec.channel,
                state=spec.state,
                language=spec.language,
                team_id=teams_by_slug[spec.team] if spec.team else None,
                assignee_id=users[spec.assignee] if spec.assignee else None,
                waiting_since=at if spec.state == "waiting_human" else None,
                created_at=at - timedelta(minutes=30),
                updated_at=at,
            )
            session.add_all([contact, conversation])
            await session.flush()
            for n, (author, body) in enumerate(spec.messages):
                session.add(
                    Message(
                        id=uuid.uuid4(),
                        conversation_id=conversation.id,
                        channel=spec.channel,
                        author=author,
                        text=body,
                        meta={},
                        created_at=at - timedelta(minutes=len(spec.messages) - n),
                    )
                )
                await session.flush()  # one at a time: ``seq`` follows the order
            for name in spec.labels:
                session.add(ConversationLabel(conversation_id=conversation.id, label_id=labels_by_name[name]))
            ids[spec.key] = str(conversation.id)
    return ids


@pytest.fixture
async def shop(runtime: Runtime, company: CompanyCtx) -> Inbox:
    """A company with agents Ana (a personal key) and Bia, teams suporte (both) and vendas
    (Bia), labels urgente and VIP, and the conversations of ``SPECS``."""
    slug = company.slug
    async with runtime.db.transaction() as session:
        users = {
            name: (
                await arrange_user(
                    session,
                    company_id=company.id,
                    email=f"{name}@{slug}.example",
                    password="senha-segura-1",
                    role=Role.agent,
                    name=name.title(),
                )
            ).id
            for name in ("ana", "bia")
        }
        _key, ana_key = await tenancy.create_api_key(
            session,
            secret_key=runtime.secret_key,
            company_id=company.id,
            name="ana",
            role=Role.agent,
            user_email=f"ana@{slug}.example",
        )
    async with runtime.db.transaction(company.id) as session:
        suporte, _ = await teams.put_team(
            session, None, name="Suporte", slug="suporte", hours=None, members=[users["ana"], users["bia"]]
        )
        vendas, _ = await teams.put_team(
            session, None, name="Vendas", slug="vendas", hours=None, members=[users["bia"]]
        )
        made = {name: (await labels.create_label(session, name=name)).id for name in ("urgente", "VIP")}
    ids = await arrange(
        runtime,
        company.id,
        SPECS,
        teams_by_slug={"suporte": suporte.id, "vendas": vendas.id},
        users=users,
        labels_by_name={"urgente": made["urgente"], "vip": made["VIP"]},
    )
    return Inbox(
        company=company,
        ids=ids,
        users=users,
        ana=company.with_key(ana_key),
        ana_principal=Principal(company_id=company.id, role=Role.agent, user_id=users["ana"]),
    )


async def listed(client: httpx.AsyncClient, shop: Inbox, **params: Any) -> list[str]:
    """The spec keys of the conversations listed, in order (one page)."""
    r = await client.get("/v1/conversations", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    keys = {v: k for k, v in shop.ids.items()}
    return [keys[item["id"]] for item in r.json()["items"]]


NEWEST_FIRST = [s.key for s in reversed(SPECS)]


def newest_first(*keys: str) -> list[str]:
    return [k for k in NEWEST_FIRST if k in keys]


async def test_each_view_lists_its_conversations_most_recent_first(shop: Inbox) -> None:
    ana = shop.ana
    assert await listed(ana, shop) == NEWEST_FIRST
    assert await listed(ana, shop, view="all") == NEWEST_FIRST
    assert await listed(ana, shop, view="mine") == newest_first("ana_pt", "ana_webchat")
    assert await listed(ana, shop, view="unassigned") == newest_first("waiting_es", "waiting_en")
    assert await listed(ana, shop, view="my_teams") == newest_first("waiting_es", "ana_pt")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "open"}, ("bot", "waiting_es", "ana_pt", "bia_en", "waiting_en", "ana_webchat")),
        ({"state": "resolved"}, ("resolved",)),
        ({"state": ["bot", "resolved"]}, ("bot", "resolved")),
        ({"channel": "webchat"}, ("waiting_es", "ana_webchat")),
        ({"team": "vendas"}, ("bia_en", "waiting_en")),
        ({"assignee": "bia"}, ("bia_en",)),
        ({"assignee": "me"}, ("ana_pt", "ana_webchat")),
        ({"assignee": "none"}, ("bot", "waiting_es", "resolved", "waiting_en")),
        ({"label": "urgente"}, ("waiting_es", "ana_pt")),
        ({"label": "vip"}, ("ana_pt",)),  # a label's name in any case
        ({"language": "en"}, ("bia_en", "waiting_en")),
        ({"search": "refund"}, ("bia_en",)),
        ({"view": "mine", "label": "urgente"}, ("ana_pt",)),
        ({"view": "my_teams", "state": "waiting_human"}, ("waiting_es",)),
        ({"view": "my_teams", "team": "vendas"}, ()),  # not one of Ana's teams
        ({"view": "my_teams", "team": "suporte", "language": "es"}, ("waiting_es",)),
        ({"view": "mine", "assignee": "bia"}, ()),
        ({"view": "unassigned", "assignee": "none", "search": "invoice"}, ("waiting_en",)),
        ({"updated_since": (START + timedelta(hours=5)).isoformat()}, ("waiting_en", "ana_webchat")),
    ],
)
async def test_each_filter_narrows_to_exactly_its_conversations(
    shop: Inbox, params: dict[str, Any], expected: tuple[str, ...]
) -> None:
    if params.get("assignee") == "bia":
        params = {**params, "assignee": f"bia@{shop.company.slug}.example"}
    assert await listed(shop.ana, shop, **params) == newest_first(*expected)


SEARCHES = {
    "pedido": ("bot", "waiting_es"),
    "PEDIDO 4521": ("bot",),  # every word, case ignored
    "nao consigo": ("ana_webchat",),  # accents ignored
    "dónde": ("waiting_es",),
    "quebra": ("ana_pt",),  # the start of a longer word
    "trocar": ("ana_pt",),  # an agent's reply is searched too
    "desculpe!": ("ana_pt",),
    "Where": ("bia_en",),
    "reembolso": (),
    "de": (),  # two letters: a whole word only ("desculpe" is not "de")
}


@pytest.mark.parametrize("way", ["index", "walk"])
async def test_a_search_finds_the_same_conversations_by_index_or_by_walking(
    shop: Inbox, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare word's messages come from the index; a common word's conversations are walked
    most recent first. Both ways find exactly the conversations with every word."""
    monkeypatch.setattr(conversations_inbox, "SEARCH_INDEX_MAX", 10**9 if way == "index" else -1)
    for search, expected in SEARCHES.items():
        assert await listed(shop.ana, shop, search=search) == newest_first(*expected), search
    assert await listed(shop.ana, shop, search="pedido", view="my_teams") == ["waiting_es"]
    page = (await shop.ana.get("/v1/conversations", params={"search": "pedido", "limit": 1})).json()
    rest = (
        await shop.ana.get("/v1/conversations", params={"search": "pedido", "cursor": page["next_cursor"]})
    ).json()
    assert [row["id"] for row in page["items"] + rest["items"]] == [shop.ids["waiting_es"], shop.ids["bot"]]


async def test_the_search_folds_the_accents_the_walk_expects(runtime: Runtime, company: CompanyCtx) -> None:
    """The walk's cheap check stands each plain letter for the accented ones the index's
    function folds into it (migration 0020): the two lists are one."""
    async with runtime.db.transaction(company.id) as session:
        for plain, accented in conversations_inbox.ACCENTS.items():
            for letter in accented + accented.upper():
                words = await session.scalar(select(func.atende_search_words_v1(f"x{letter}x")))
                assert words == [f"x{plain}x"], letter
        # and no other letter: one the walk would not expect folded either
        kept = await session.scalar(select(func.atende_search_words_v1("è Ö")))
    assert kept == ["è", "ö"]


async def test_a_row_carries_what_the_inbox_shows(shop: Inbox) -> None:
    r = await shop.ana.get("/v1/conversations", params={"view": "mine"})
    rows = {row["id"]: row for row in r.json()["items"]}
    ana_pt = rows[shop.ids["ana_pt"]]
    assert ana_pt["contact_name"] == "ana_pt"
    assert ana_pt["state"] == "human"
    assert ana_pt["channel"] == "api"
    assert ana_pt["language"] == "pt"
    assert ana_pt["team"] == {"id": ana_pt["team_id"], "slug": "suporte", "name": "Suporte"}
    assert ana_pt["assignee"] == {
        "id": str(shop.users["ana"]),
        "name": "Ana",
        "email": f"ana@{shop.company.slug}.example",
    }
    assert ana_pt["last_message"]["author"] == "agent"
    assert ana_pt["last_message"]["preview"] == "Vamos trocar, desculpe!"
    assert ana_pt["unanswered"] == 0
    assert [label["name"] for label in ana_pt["labels"]] == ["urgente", "VIP"]
    webchat = rows[shop.ids["ana_webchat"]]
    assert webchat["team"] is None
    assert webchat["unanswered"] == 1
    assert webchat["labels"] == []
    everything = (await shop.ana.get("/v1/conversations")).json()["items"]
    bot = next(row for row in everything if row["id"] == shop.ids["bot"])
    assert bot["contact_name"] == "Ana Paula"
    assert bot["unanswered"] == 2  # two customer messages, no reply yet
    assert bot["last_message"]["preview"] == "Alô?"
    waiting = next(row for row in everything if row["id"] == shop.ids["waiting_en"])
    assert waiting["waiting_since"] is not None
    assert waiting["assignee"] is None


async def test_counts_per_view_follow_the_filters(shop: Inbox) -> None:
    r = await shop.ana.get("/v1/conversations/counts")
    assert r.status_code == 200, r.text

    def plain(body: dict[str, Any]) -> dict[str, Any]:
        return {view: body[view]["count"] for view in ("mine", "unassigned", "my_teams", "all")}

    assert plain(r.json()) == {"mine": 2, "unassigned": 2, "my_teams": 2, "all": 7}
    assert r.json()["cap"] == conversations_inbox.COUNT_CAP
    assert not any(r.json()[view]["capped"] for view in ("mine", "unassigned", "my_teams", "all"))
    r = await shop.ana.get("/v1/conversations/counts", params={"state": "open", "label": "urgente"})
    assert plain(r.json()) == {"mine": 1, "unassigned": 1, "my_teams": 2, "all": 2}
    r = await shop.ana.get("/v1/conversations/counts", params={"search": "pedido"})
    assert plain(r.json()) == {"mine": 0, "unassigned": 1, "my_teams": 1, "all": 2}


async def test_a_count_stops_at_the_cap_and_says_so(
    shop: Inbox, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversations_inbox, "COUNT_CAP", 3)
    async with runtime.db.transaction(shop.company.id) as session:
        counts = await inbox.count_views(session, shop.ana_principal, inbox.InboxQuery())
    assert counts[inbox.View.all] == conversations_inbox.Count(3, capped=True)
    assert counts[inbox.View.mine] == conversations_inbox.Count(2, capped=False)
    # a search whose words are in more messages than a count reads: each count is a floor
    monkeypatch.setattr(conversations_inbox, "COUNT_SEARCH_MAX", 1)
    async with runtime.db.transaction(shop.company.id) as session:
        counts = await inbox.count_views(session, shop.ana_principal, inbox.InboxQuery(search="pedido"))
    assert all(count is not None and count.capped for count in counts.values())
    assert counts[inbox.View.all] is not None
    assert 1 <= counts[inbox.View.all].count <= 2


async def test_a_snoozed_conversation_is_out_of_the_lists_until_it_wakes(shop: Inbox) -> None:
    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = await shop.ana.post(f"/v1/conversations/{shop.ids['ana_pt']}/snooze", json={"until": until})
    assert r.status_code == 200, r.text
    assert await listed(shop.ana, shop, view="mine") == ["ana_webchat"]
    assert await listed(shop.ana, shop, view="mine", snoozed="only") == ["ana_pt"]
    both = await listed(shop.ana, shop, view="mine", snoozed="include")
    assert set(both) == {"ana_pt", "ana_webchat"}
    assert "ana_pt" not in await listed(shop.ana, shop, search="quebrada")
    counts = (await shop.ana.get("/v1/conversations/counts")).json()
    assert (counts["mine"]["count"], counts["all"]["count"]) == (1, 6)
    only = (await shop.ana.get("/v1/conversations/counts", params={"snoozed": "only"})).json()
    assert (only["mine"]["count"], only["all"]["count"]) == (1, 1)
    r = await shop.ana.get("/v1/conversations", params={"snoozed": "later"})
    assert r.status_code == 422
    assert "snoozed" in r.text
    assert (await shop.ana.post(f"/v1/conversations/{shop.ids['ana_pt']}/unsnooze")).status_code == 200
    assert set(await listed(shop.ana, shop, view="mine")) == {"ana_pt", "ana_webchat"}


async def test_a_company_key_has_no_mine_nor_my_teams(shop: Inbox) -> None:
    client = shop.company.client  # the company's admin key: nobody in particular
    for view in ("mine", "my_teams"):
        r = await client.get("/v1/conversations", params={"view": view})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "view"
        assert "needs a personal key" in r.json()["detail"]
    r = await client.get("/v1/conversations/counts")
    assert r.json()["mine"] is None
    assert r.json()["my_teams"] is None
    assert r.json()["all"]["count"] == 7


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"view": "everything"}, "view", "Input should be"),
        ({"state": "open-ish"}, "state", "Input should be"),
        ({"language": "fr"}, "language", "Input should be"),
        ({"team": "juridico"}, "team", "there is no team 'juridico'"),
        ({"label": "inexistente"}, "label", "there is no label 'inexistente'"),
        ({"assignee": "ninguem@example.com"}, "assignee", "is not an agent of this company"),
        ({"search": "?!"}, "search", "give at least one word"),
        ({"search": ""}, "search", "at least 1 character"),
        ({"search": "x" * 201}, "search", "at most 200 characters"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "cursor is not valid"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
    ],
)
async def test_a_bad_filter_value_is_a_422_that_names_it(
    shop: Inbox, params: dict[str, Any], field: str, says: str
) -> None:
    for path in ("/v1/conversations", "/v1/conversations/counts"):
        if path.endswith("counts") and field in ("cursor", "limit", "view"):
            continue
        r = await shop.ana.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert says in r.text, r.text
        body = r.json()
        named = body.get("field") or " ".join(str(part) for e in body["detail"] for part in e["loc"])
        assert field in named, body


async def test_another_companys_conversations_never_appear(
    shop: Inbox, runtime: Runtime, other_company: CompanyCtx
) -> None:
    """Company B has a conversation matching every filter A uses, a label named like A's."""
    async with runtime.db.transaction(other_company.id) as session:
        urgente = (await labels.create_label(session, name="urgente")).id
    b_ids = await arrange(
        runtime,
        other_company.id,
        (
            Spec(
                "b",
                "waiting_human",
                channel="webchat",
                language="es",
                labels=("urgente",),
                messages=(("customer", "Hola, ¿dónde está mi pedido 4521?"),),
            ),
        ),
        teams_by_slug={},
        users={},
        labels_by_name={"urgente": urgente},
        start=START + timedelta(days=1),  # more recent than all of A's
    )
    everything = (await shop.ana.get("/v1/conversations", params={"limit": 200})).json()["items"]
    assert {row["id"] for row in everything} == set(shop.ids.values())
    for params in (
        {"search": "pedido 4521"},
        {"label": "urgente"},
        {"view": "unassigned"},
        {"language": "es", "channel": "webchat"},
    ):
        rows = (await shop.ana.get("/v1/conversations", params=params)).json()["items"]
        assert b_ids["b"] not in {row["id"] for row in rows}, params
        assert rows, params  # A has its own
    # and B, with its own key, finds it
    mine = (await other_company.client.get("/v1/conversations", params={"search": "pedido 4521"})).json()
    assert [row["id"] for row in mine["items"]] == [b_ids["b"]]
    # a label of B's, by id, filters nothing of A's: it is not A's label
    r = await shop.ana.get("/v1/conversations", params={"label": str(urgente)})
    assert r.status_code == 422
    assert "there is no label" in r.json()["detail"]


async def test_pages_walk_every_conversation_once_while_customers_write(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """30 conversations, walked 7 at a time. Between pages customers write: in a new
    conversation, in one already listed, in one not reached yet. No conversation is listed
    twice; each one nobody wrote to meanwhile is listed exactly once; the one written to
    before the walk reached it moved to the top, where a fresh first page shows it."""
    specs = tuple(
        Spec(f"p{i}", "human", messages=(("customer", f"mensagem {i}"), ("agent", "ok"))) for i in range(30)
    )
    ids = await arrange(runtime, company.id, specs, teams_by_slug={}, users={}, labels_by_name={})
    by_id = {v: k for k, v in ids.items()}

    async def write(key: str | None) -> str:
        body: dict[str, Any] = {
            "contact": {"external_id": f"{key}-{key[1:]}" if key else "novo"},
            "text": "oi?",
        }
        if key:
            body["conversation_id"] = ids[key]
        r = await company.client.post("/v1/messages", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["conversation_id"])

    walked: list[str] = []
    cursor = None
    written: set[str] = set()
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7, "state": "human"}
        if cursor:
            params["cursor"] = cursor
        page = (await company.client.get("/v1/conversations", params=params)).json()
        walked += [by_id[item["id"]] for item in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
        if pages == 1:
            await write(walked[0])  # already listed: moves up, above every cursor
            written.add(walked[0])
            await write("p0")  # the oldest, not reached yet: moves to the top
            written.add("p0")
            new = await write(None)  # a new customer: a new conversation, at the top
            assert new not in ids.values()
        if not cursor:
            break
    assert len(walked) == len(set(walked)), "a conversation was listed twice"
    untouched = set(ids) - written
    assert untouched <= set(walked)
    assert "p0" not in walked  # it moved above the walk
    first = await listed_keys(company.client, by_id, state="human", limit=3)
    assert set(first[:2]) == {"p0", walked[0]}


async def listed_keys(client: httpx.AsyncClient, by_id: dict[str, str], **params: Any) -> list[str]:
    r = await client.get("/v1/conversations", params=params)
    return [by_id[item["id"]] for item in r.json()["items"] if item["id"] in by_id]


async def test_the_service_and_the_api_list_the_same_page(shop: Inbox, runtime: Runtime) -> None:
    """The dashboard calls ``teams.inbox.list_inbox``; the API answers what it returns."""
    async with runtime.db.transaction(shop.company.id) as session:
        items, cursor = await inbox.list_inbox(
            session, shop.ana_principal, inbox.InboxQuery(view=inbox.View.my_teams, states=("open",)), limit=1
        )
    assert cursor is not None
    r = await shop.ana.get("/v1/conversations", params={"view": "my_teams", "state": "open", "limit": 1})
    assert [str(item.row.conversation.id) for item in items] == [row["id"] for row in r.json()["items"]]
    assert r.json()["next_cursor"] == cursor
