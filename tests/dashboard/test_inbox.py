"""The inbox and conversation pages over HTTP, as a browser sends them: what each view and
filter lists, counts, pages, snoozed conversations left out, bad filters said on the page;
the conversation's thread, evidence and customer; every action, with its role check, CSRF,
bad input and another company's id (404). The browser tests drive the same pages in
Chromium; these check what a person reads in the HTML the server answers."""

from __future__ import annotations

import re

import pytest

from atende.runtime import Runtime
from tests.fixtures.dashboard import Team, make_team, signed_in
from tests.fixtures.inbox import Shop, make_shop


@pytest.fixture
async def shop(runtime: Runtime, team: Team) -> Shop:
    return await make_shop(runtime, team)


def contacts_listed(html: str) -> list[str]:
    return re.findall(r'class="row-link"[^>]*href="/app/conversations/[^"]+">([^<]+)</a>', html)


async def test_each_view_lists_its_conversations_with_its_count(live_server: str, shop: Shop) -> None:
    async with signed_in(live_server, shop.team.agent) as client:
        page = await client.get("/app/inbox")
        assert page.status_code == 200, page.text
        # most recent first; the snoozed conversation is in no list
        assert contacts_listed(page.text) == ["Bruno Borges", "Carla Cliente", "Dora Dias", "Eva Evans"]
        assert re.search(r'aria-current="page">All <span class="count">4</span>', page.text)
        assert 'Mine <span class="count">1</span>' in page.text
        assert 'Unassigned <span class="count">1</span>' in page.text
        assert 'My teams <span class="count">1</span>' in page.text
        mine = await client.get("/app/inbox", params={"view": "mine"})
        assert contacts_listed(mine.text) == ["Bruno Borges"]
        unassigned = await client.get("/app/inbox", params={"view": "unassigned"})
        assert contacts_listed(unassigned.text) == ["Carla Cliente"]
        teams = await client.get("/app/inbox", params={"view": "my_teams"})
        assert contacts_listed(teams.text) == ["Carla Cliente"]
        snoozed = await client.get("/app/inbox", params={"state": "snoozed"})
        assert contacts_listed(snoozed.text) == ["Fábio Farias"]
        assert "snoozed until" in snoozed.text


async def test_a_row_shows_contact_channel_state_assignee_and_last_message(
    live_server: str, shop: Shop
) -> None:
    async with signed_in(live_server, shop.team.viewer) as client:
        page = (await client.get("/app/inbox")).text
    row = page[page.index(f'id="row-{shop.ids["mine"]}"') :]
    row = row[: row.index("</tr>")]
    for shown in ("Bruno Borges", "API", "With an agent", "Ana Agent", "Enviei a etiqueta de troca.", "vip"):
        assert shown in row, shown
    carla = page[page.index(f'id="row-{shop.ids["handed_off"]}"') :]
    carla = carla[: carla.index("</tr>")]
    for shown in (
        "Web chat",
        "Waiting for a person",
        "Suporte",
        "Nobody",
        "urgente",
        "Bot:</span> Vou passar",
    ):
        assert shown in carla, shown


FILTERS = (
    ({"state": "open"}, ["Bruno Borges", "Carla Cliente", "Dora Dias"]),
    ({"state": "resolved"}, ["Eva Evans"]),
    ({"channel": "webchat"}, ["Carla Cliente"]),
    ({"team": "suporte"}, ["Carla Cliente"]),
    ({"assignee": "none"}, ["Carla Cliente", "Dora Dias", "Eva Evans"]),
    ({"label": "vip"}, ["Bruno Borges"]),
    ({"language": "en"}, ["Eva Evans"]),
    ({"search": "pedido 4521"}, ["Carla Cliente"]),
    ({"search": "prazo"}, ["Dora Dias"]),
    ({"view": "mine", "label": "urgente"}, []),
)


async def test_each_filter_narrows_the_list(live_server: str, shop: Shop) -> None:
    async with signed_in(live_server, shop.team.agent) as client:
        for params, expected in FILTERS:
            page = await client.get("/app/inbox", params=params)
            assert page.status_code == 200, page.text
            assert contacts_listed(page.text) == expected, params


async def test_older_pages_walk_the_list(
    live_server: str, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atende.dashboard import inbox

    monkeypatch.setattr(inbox, "PAGE_SIZE", 3)  # the live server runs in this process
    async with signed_in(live_server, shop.team.agent) as client:
        first = await client.get("/app/inbox", params={"state": "open"})
        assert contacts_listed(first.text) == ["Bruno Borges", "Carla Cliente", "Dora Dias"]
        first = await client.get("/app/inbox")
        assert contacts_listed(first.text) == ["Bruno Borges", "Carla Cliente", "Dora Dias"]
        older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first.text)
        assert older
        second = await client.get(older.group(1).replace("&amp;", "&"))
        assert contacts_listed(second.text) == ["Eva Evans"]
        assert 'rel="next"' not in second.text
        assert ">Newest</a>" in second.text


BAD_FILTERS = (
    ({"team": "juridico"}, "The company has no such team."),
    ({"label": "nope"}, "The company has no such label."),
    ({"assignee": "someone@example.com"}, "That person is not an agent of this company."),
    ({"search": "!!!"}, "Type up to 200 characters, with at least one letter or digit, to search."),
    ({"search": "x" * 201}, "Type up to 200 characters"),
    ({"view": "everything"}, "There is no such view."),
    ({"state": "sleeping"}, "There is no such state."),
    ({"language": "de"}, "There is no such language."),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "That page of the list is no longer valid"),
    ({"search": "a\x00b"}, "Type up to 200 characters"),
)


async def test_a_bad_filter_is_a_notice_on_the_page(live_server: str, shop: Shop) -> None:
    async with signed_in(live_server, shop.team.agent) as client:
        for params, says in BAD_FILTERS:
            page = await client.get("/app/inbox", params=params)
            assert page.status_code == 422, (params, page.text)
            assert 'role="alert"' in page.text
            assert says in page.text, params
            assert contacts_listed(page.text) == []
            assert 'id="filter-team"' in page.text  # the form is there to fix it


async def test_the_inbox_is_in_the_readers_language(live_server: str, shop: Shop) -> None:
    async with signed_in(live_server, shop.team.agent, language="pt-BR") as client:
        page = (await client.get("/app/inbox")).text
    for shown in (
        "Caixa de entrada",
        "Minhas",
        "Sem responsável",
        "Aguardando uma pessoa",
        "Buscar nas mensagens",
    ):
        assert shown in page, shown


async def test_another_companys_conversations_never_appear(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    rival = await make_team(runtime, name="Rival")
    await make_shop(runtime, rival)
    async with signed_in(live_server, shop.team.owner) as client:
        page = await client.get("/app/inbox")
        listed = re.findall(r'href="/app/conversations/([^"]+)"', page.text)
    assert set(listed) == {str(shop.ids[k]) for k in ("mine", "handed_off", "answered", "resolved")}
