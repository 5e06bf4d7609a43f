"""docs/API.md describes the API there is: the query parameters of the listing routes, the
bodies of agent replies and state changes, reading and deleting documents, and a readiness
example at this release's newest migration."""

from __future__ import annotations

import re

from fastapi import FastAPI

from atende.db.migrate import head_revision
from tests.conftest import ROOT

API_MD = (ROOT / "docs" / "API.md").read_text()


def named(name: str) -> bool:
    return f"`{name}`" in API_MD or f"{name}=" in API_MD


def test_the_listing_routes_parameters_are_all_described(live_app: FastAPI) -> None:
    paths = live_app.openapi()["paths"]
    for path in ("/v1/conversations", "/v1/conversations/{conversation_id}/messages", "/v1/audit-events"):
        parameters = [p["name"] for p in paths[path]["get"]["parameters"] if p["in"] == "query"]
        assert parameters, path
        assert [p for p in parameters if not named(p)] == [], path
    assert named("next_cursor")


def test_the_bodies_of_replies_and_state_changes_are_described(live_app: FastAPI) -> None:
    schemas = live_app.openapi()["components"]["schemas"]
    for schema in ("AgentReplyIn", "StateChangeIn", "HandoffIn"):
        fields = list(schemas[schema]["properties"])
        assert [f for f in fields if not named(f)] == [], schema
    for route in ("/replies", "/state", "/handback", "/resolve", "/assign"):
        assert f"/v1/conversations/{{id}}{route}" in API_MD or f"`{route}`" in API_MD, route


def test_reading_and_deleting_documents_is_described(live_app: FastAPI) -> None:
    for route in (
        "GET /v1/documents`",
        "GET /v1/documents/{id}`",
        "GET /v1/documents/{id}/chunks`",
        "DELETE /v1/documents/{id}`",
    ):
        assert route in API_MD, route
    fields = list(live_app.openapi()["components"]["schemas"]["DocumentPublic"]["properties"])
    assert [f for f in fields if not named(f)] == []


def test_the_readiness_example_is_at_the_newest_migration() -> None:
    [shown] = re.findall(r'"migrations": \{"ok": true, "detail": "at (\w+)"\}', API_MD)
    assert shown == head_revision()


def test_the_docs_keep_their_groups_in_reading_order(live_app: FastAPI) -> None:
    # the app includes the channels' routers first (intake is matched sooner); /docs and
    # /redoc order their groups by the declared tags, which keep the reading order
    spec = live_app.openapi()
    declared = [tag["name"] for tag in spec["tags"]]
    assert declared[:4] == ["operations", "company", "hours and handoff", "conversations"]
    assert declared[-3:] == ["web chat", "whatsapp", "email"]  # the channels, in CHANNELS order
    used = {tag for operations in spec["paths"].values() for op in operations.values() for tag in op["tags"]}
    assert set(declared) == used
