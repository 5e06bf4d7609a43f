#!/usr/bin/env python3
"""Load atende's analytics dashboard (deploy/metabase/atende-dashboard.json) into a Metabase.

Through Metabase's REST API, in this order, each step done again only where needed (running
the script twice updates what it made, and makes nothing twice):

1. first run of a new Metabase (``GET /api/session/properties`` has a setup token and no
   user yet): ``POST /api/setup`` makes the admin user with --email and --password;
2. signs in (``POST /api/session``), or uses an API key (``x-api-key``, --api-key);
3. the database "atende analytics": atende's PostgreSQL as the read-only login
   ``metabase_reader``, only the schema ``analytics`` (``GET``/``POST /api/database``, then
   ``POST /api/database/{id}/sync_schema`` once made);
4. the collection "atende" (``GET``/``POST /api/collection``);
5. each card of the export as a native SQL question in that collection, found by name
   (``GET /api/collection/{id}/items``, ``POST /api/card`` or ``PUT /api/card/{id}``);
6. the dashboard, its cards laid out as in the export and its "Company (slug)" filter wired
   to every card (``POST /api/dashboard``, ``PUT /api/dashboard/{id}``).

Every request has a timeout (--timeout, 30 s). Passwords are read from the environment
(``MB_ADMIN_PASSWORD``, ``ANALYTICS_DB_PASSWORD``, ``MB_API_KEY``) rather than the command
line, and never printed. Exit status 1 with Metabase's answer on any refusal.

    MB_ADMIN_PASSWORD=… ANALYTICS_DB_PASSWORD=… python scripts/metabase_load.py \\
        --url http://127.0.0.1:3001 --email admin@example.com

docs/DEPLOYMENT.md ("Metabase") tells when to run it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

EXPORT = Path(__file__).resolve().parent.parent / "deploy" / "metabase" / "atende-dashboard.json"
TAG = "company"


class Refused(Exception):
    """Metabase answered an error."""


class Metabase:
    def __init__(self, url: str, timeout: float, api_key: str | None = None) -> None:
        headers = {"x-api-key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        try:
            response = self.http.request(method, path, json=body, params=params or None)
        except httpx.HTTPError as exc:
            raise Refused(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise Refused(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def close(self) -> None:
        self.http.close()


def listed(answer: Any) -> list[dict[str, Any]]:
    """Metabase answers some lists bare and others as ``{"data": [...]}`` (by version)."""
    if isinstance(answer, dict):
        return list(answer.get("data", []))
    return list(answer or [])


def sign_in(mb: Metabase, email: str | None, password: str | None, site_name: str) -> None:
    properties = mb.call("GET", "/api/session/properties")
    token = properties.get("setup-token")
    if token and not properties.get("has-user-setup"):
        if not (email and password):
            raise Refused("this Metabase is new: give --email and MB_ADMIN_PASSWORD to make its admin")
        mb.call(
            "POST",
            "/api/setup",
            {
                "token": token,
                "user": {"email": email, "password": password, "first_name": "atende", "last_name": "admin"},
                "prefs": {"site_name": site_name, "allow_tracking": False},
            },
        )
        print(f"made the admin user {email}")
    if "x-api-key" in mb.http.headers:
        return
    if not (email and password):
        raise Refused("give --email and MB_ADMIN_PASSWORD, or MB_API_KEY")
    session = mb.call("POST", "/api/session", {"username": email, "password": password})
    mb.http.headers["X-Metabase-Session"] = session["id"]


def database(mb: Metabase, spec: dict[str, Any], args: argparse.Namespace) -> int:
    for found in listed(mb.call("GET", "/api/database")):
        if found["name"] == spec["name"]:
            print(f"database {spec['name']!r}: there already (id {found['id']})")
            return int(found["id"])
    if not args.db_password:
        raise Refused("set ANALYTICS_DB_PASSWORD (metabase_reader's password) to add the database")
    made = mb.call(
        "POST",
        "/api/database",
        {
            "engine": spec["engine"],
            "name": spec["name"],
            "details": {
                "host": args.db_host,
                "port": args.db_port,
                "dbname": args.db_name,
                "user": args.db_user,
                "password": args.db_password,
                "ssl": False,
                "schema-filters-type": "inclusion",
                "schema-filters-patterns": spec["schema"],
            },
            "is_full_sync": True,
        },
    )
    mb.call("POST", f"/api/database/{made['id']}/sync_schema")
    print(f"database {spec['name']!r}: added (id {made['id']}), schema {spec['schema']} only")
    return int(made["id"])


def collection(mb: Metabase, spec: dict[str, Any]) -> int:
    for found in listed(mb.call("GET", "/api/collection")):
        if (
            found.get("name") == spec["name"]
            and not found.get("archived")
            and isinstance(found.get("id"), int)
        ):
            return int(found["id"])
    made = mb.call("POST", "/api/collection", {"name": spec["name"], "description": spec["description"]})
    print(f"collection {spec['name']!r}: made (id {made['id']})")
    return int(made["id"])


def items(mb: Metabase, collection_id: int, model: str) -> dict[str, int]:
    answer = mb.call("GET", f"/api/collection/{collection_id}/items", models=model)
    return {item["name"]: int(item["id"]) for item in listed(answer) if item.get("model", model) == model}


def card_body(card: dict[str, Any], database_id: int, collection_id: int, tag_id: str) -> dict[str, Any]:
    tags = {}
    if "{{" + TAG + "}}" in card["query"]:
        tags[TAG] = {"id": tag_id, "name": TAG, "display-name": "Company (slug)", "type": "text"}
    return {
        "name": card["name"],
        "description": card["description"],
        "display": card["display"],
        "collection_id": collection_id,
        "visualization_settings": card["visualization_settings"],
        "dataset_query": {
            "type": "native",
            "database": database_id,
            "native": {"query": card["query"], "template-tags": tags},
        },
    }


def load(mb: Metabase, export: dict[str, Any], args: argparse.Namespace) -> int:
    sign_in(mb, args.email, args.password, args.site_name)
    database_id = database(mb, export["database"], args)
    collection_id = collection(mb, export["collection"])
    existing = items(mb, collection_id, "card")
    card_ids = []
    for card in export["cards"]:
        # the tag's id is derived from the card's key: the same on every run
        tag_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"atende:{card['key']}:{TAG}"))
        body = card_body(card, database_id, collection_id, tag_id)
        if card["name"] in existing:
            card_id = existing[card["name"]]
            mb.call("PUT", f"/api/card/{card_id}", body)
        else:
            card_id = int(mb.call("POST", "/api/card", body)["id"])
        card_ids.append(card_id)
    print(f"{len(card_ids)} cards in collection {export['collection']['name']!r}")

    spec = export["dashboard"]
    dashboards = items(mb, collection_id, "dashboard")
    if spec["name"] in dashboards:
        dashboard_id = dashboards[spec["name"]]
    else:
        made = mb.call(
            "POST",
            "/api/dashboard",
            {"name": spec["name"], "description": spec["description"], "collection_id": collection_id},
        )
        dashboard_id = int(made["id"])
    dashcards = []
    for n, (card, card_id) in enumerate(zip(export["cards"], card_ids, strict=True), start=1):
        mappings = []
        if "{{" + TAG + "}}" in card["query"]:
            mappings = [
                {"parameter_id": p["id"], "card_id": card_id, "target": ["variable", ["template-tag", TAG]]}
                for p in spec["parameters"]
            ]
        # negative ids: new dashcards; the dashboard's earlier ones are replaced
        dashcards.append({"id": -n, "card_id": card_id, **card["layout"], "parameter_mappings": mappings})
    mb.call(
        "PUT",
        f"/api/dashboard/{dashboard_id}",
        {"description": spec["description"], "parameters": spec["parameters"], "dashcards": dashcards},
    )
    print(f"dashboard {spec['name']!r}: {args.url.rstrip('/')}/dashboard/{dashboard_id}")
    return dashboard_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Load atende's analytics dashboard into Metabase (its REST API).",
        epilog="Passwords come from the environment: MB_ADMIN_PASSWORD (the Metabase admin's), "
        "ANALYTICS_DB_PASSWORD (metabase_reader's, to add the database), MB_API_KEY (instead of "
        "signing in).",
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:3001", help="Metabase's address (default: %(default)s)"
    )
    parser.add_argument(
        "--email", default=os.environ.get("MB_ADMIN_EMAIL"), help="the admin's e-mail (MB_ADMIN_EMAIL)"
    )
    parser.add_argument(
        "--site-name", default="atende", help="the site name of a new Metabase (default: %(default)s)"
    )
    parser.add_argument(
        "--db-host",
        default="postgres",
        help="PostgreSQL's host as Metabase reaches it (default: %(default)s)",
    )
    parser.add_argument("--db-port", type=int, default=5432, help="its port (default: %(default)s)")
    parser.add_argument("--db-name", default="atende", help="atende's database (default: %(default)s)")
    parser.add_argument(
        "--db-user", default="metabase_reader", help="the read-only login (default: %(default)s)"
    )
    parser.add_argument(
        "--export", type=Path, default=EXPORT, help="the dashboard export (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    args.password = os.environ.get("MB_ADMIN_PASSWORD")
    args.db_password = os.environ.get("ANALYTICS_DB_PASSWORD")
    try:
        export = json.loads(args.export.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.export}: {exc}", file=sys.stderr)
        return 1
    mb = Metabase(args.url, args.timeout, os.environ.get("MB_API_KEY"))
    try:
        load(mb, export, args)
    except Refused as exc:
        print(f"metabase_load: {exc}", file=sys.stderr)
        return 1
    finally:
        mb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
