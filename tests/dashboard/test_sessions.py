"""Signing in and out over HTTP: the session cookie, its expiry and revocation, CSRF, the
sign-in limits. (The same flows in a real browser: test_browser.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from atende.config import Settings
from tests.conftest import Clock
from tests.fixtures.dashboard import PASSWORD, Team, browser_client, csrf_of, post_form, sign_in, signed_in


def waited(page: str) -> int:
    """The seconds a sign-in page asks to wait."""
    found = re.search(r"Too many attempts\. Wait (\d+) (second|seconds|minute|minutes) and try again\.", page)
    assert found, page
    return int(found.group(1)) * (60 if found.group(2).startswith("minute") else 1)


def cookie_header(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


async def test_signing_in_sets_an_httponly_lax_cookie_and_opens_the_start_page(
    live_server: str, team: Team
) -> None:
    async with browser_client(live_server) as client:
        first = await client.get("/app", follow_redirects=False)
        assert (first.status_code, first.headers["location"]) == (303, "/app/login?next=/app")
        response = await sign_in(client, team.agent.email)
        assert (response.status_code, response.headers["location"]) == (303, "/app")
        cookie = cookie_header(response, "atende_session").lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/app" in cookie
        assert "secure" not in cookie  # plain HTTP
        home = await client.get("/app")
        assert home.status_code == 200
        assert "Welcome, Ana Agent" in home.text
        assert f"You are working in {team.name} as Agent." in home.text
        assert home.headers["cache-control"] == "no-store"


async def test_the_cookies_are_secure_when_the_proxy_says_https(live_server: str, team: Team) -> None:
    async with browser_client(live_server) as client:
        client.headers["X-Forwarded-Proto"] = "https"
        page = await client.get("/app/login")
        csrf_cookie = cookie_header(page, "atende_csrf")
        assert "secure" in csrf_cookie.lower()
        # a browser sends a Secure cookie over HTTPS only: here the proxy's side is plain HTTP
        client.cookies.clear()
        response = await client.post(
            "/app/login",
            data={"email": team.agent.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            headers={"Cookie": csrf_cookie.split(";", 1)[0]},
        )
        assert response.status_code == 303, response.text
        assert "secure" in cookie_header(response, "atende_session").lower()


async def test_a_wrong_password_says_so_and_signs_nobody_in(live_server: str, team: Team) -> None:
    async with browser_client(live_server) as client:
        for email, password in ((team.agent.email, "wrong password"), ("nobody@example.com", PASSWORD)):
            response = await sign_in(client, email, password)
            assert response.status_code == 401
            assert "Wrong e-mail or password." in response.text
            assert not [h for h in response.headers.get_list("set-cookie") if h.startswith("atende_session=")]
        assert (await client.get("/app", follow_redirects=False)).status_code == 303


async def test_signing_out_ends_the_session_on_the_server(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.agent) as client:
        stolen = client.cookies["atende_session"]
        response = await post_form(client, "/app/logout")
        assert (response.status_code, response.headers["location"]) == (303, "/app/login?notice=signed_out")
        assert "You are signed out." in (await client.get("/app/login?notice=signed_out")).text
    async with browser_client(live_server) as thief:  # the old cookie, replayed
        thief.cookies.set("atende_session", stolen, path="/app")
        response = await thief.get("/app/account", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/app/login?next=/app/account&notice=session_ended"


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    live_server: str, team: Team
) -> None:
    async with signed_in(live_server, team.owner) as client:
        before = (await client.get("/app/users")).text
        for data in ({}, {"csrf_token": "forged"}):
            response = await client.post(
                "/app/users/invite", data={**data, "email": "x@example.com", "role": "agent"}
            )
            assert response.status_code == 403
            assert "This form has expired" in response.text
            assert "Nothing was changed" in response.text
        after = (await client.get("/app/users")).text
        assert "x@example.com" not in after
        # an HTMX request carries the token in a header instead; a wrong one gets a notice
        response = await client.post(
            f"/app/users/{team.agent.user_id}/role",
            data={"role": "viewer"},
            headers={"HX-Request": "true", "X-CSRF-Token": "forged"},
        )
        assert response.status_code == 403
        assert response.headers["hx-retarget"] == "#notice"
        assert "Ana Agent" in after and before.count("Agent") == after.count("Agent")
        # and a sign-in form without it
        response = await client.post("/app/login", data={"email": team.owner.email, "password": PASSWORD})
        assert response.status_code == 403


async def test_an_idle_session_ends_and_so_does_an_old_one(
    live_server: str, team: Team, clock: Clock, settings: Settings
) -> None:
    start = datetime.now(UTC)
    clock.at(start)
    async with signed_in(live_server, team.agent) as client:
        clock.at(start + timedelta(minutes=settings.session_idle_minutes - 1))
        assert (await client.get("/app")).status_code == 200  # used: the idle clock starts again
        clock.at(start + timedelta(minutes=2 * settings.session_idle_minutes - 3))
        assert (await client.get("/app")).status_code == 200
        clock.at(start + timedelta(minutes=3 * settings.session_idle_minutes))
        response = await client.get("/app", follow_redirects=False)
        assert response.headers["location"].endswith("notice=session_ended")
    clock.at(start)
    async with signed_in(live_server, team.agent) as client:
        # used every few hours, it still ends at its absolute expiry
        at = start
        while at < start + timedelta(hours=settings.session_max_hours - 1):
            at += timedelta(minutes=settings.session_idle_minutes - 5)
            clock.at(at)
            if at < start + timedelta(hours=settings.session_max_hours):
                assert (await client.get("/app")).status_code == 200, at
        clock.at(start + timedelta(hours=settings.session_max_hours, minutes=1))
        response = await client.get("/app", follow_redirects=False)
        assert response.status_code == 303


async def test_failed_sign_ins_to_one_account_are_limited_with_a_clear_message(
    limited_server: str, team: Team
) -> None:
    for attempt in range(3):  # LIMITS: 3 at once, then one every 20 s
        async with browser_client(limited_server) as client:  # each from another address
            response = await sign_in(client, team.viewer.email, f"guess {attempt}")
            assert response.status_code == 401
    async with browser_client(limited_server) as client:
        response = await sign_in(client, team.viewer.email, PASSWORD)  # even the right password waits
        assert response.status_code == 429
        assert 1 <= waited(response.text) <= 20  # less when the guesses were slow (argon2 under load)
        assert 'value="' + team.viewer.email + '"' in response.text  # what was typed stays
    async with browser_client(limited_server) as client:  # other accounts are not held back
        assert (await sign_in(client, team.agent.email)).status_code == 303


async def test_failed_sign_ins_from_one_address_are_limited(limited_server: str, team: Team) -> None:
    async with browser_client(limited_server) as client:
        page = await client.get("/app/login")
        token = csrf_of(page.text)
        for attempt in range(6):  # LIMITS: 6 at once, then one every 10 s
            response = await client.post(
                "/app/login",
                data={"email": f"guess{attempt}@example.com", "password": "x", "csrf_token": token},
            )
            assert response.status_code == 401, attempt
        response = await client.post(
            "/app/login", data={"email": team.owner.email, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 429
        assert 1 <= waited(response.text) <= 10  # less when the guesses were slow (argon2 under load)
    async with browser_client(limited_server) as client:  # another address signs in
        assert (await sign_in(client, team.owner.email)).status_code == 303
