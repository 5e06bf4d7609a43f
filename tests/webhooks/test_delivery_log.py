"""An endpoint's delivery log, as the settings page and ``/v1/webhooks/{id}/deliveries`` read
it (``webhooks.list_deliveries``), over the index migration 0025 made for it: newest first,
deliveries made in the same instant ordered by id, page after page each exactly once with its
attempts in order, never another endpoint's; deleting the endpoint deletes its log and only
its log."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.webhooks import service as webhooks
from atende.webhooks.models import WebhookAttempt, WebhookDelivery


async def test_the_log_pages_newest_first_through_each_delivery_once_and_goes_with_its_endpoint(
    runtime: Runtime,
) -> None:
    slug = f"log-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
    rng = random.Random(7)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    async with runtime.db.transaction(company.id) as session:
        endpoints = [
            (
                await webhooks.create_endpoint(
                    session,
                    secret_key=runtime.secret_key,
                    url=f"https://{name}.example/hook",
                    events=["message.created"],
                    allow_private=True,
                )
            )[0]
            for name in ("erp", "crm")
        ]
        logged: dict[uuid.UUID, list[tuple[datetime, uuid.UUID, int]]] = {e.id: [] for e in endpoints}
        for n in range(40):
            endpoint = endpoints[n % 2]
            # a few instants, several deliveries in each (one event to many conversations)
            at = start + timedelta(seconds=rng.randrange(6))
            tries = rng.choice((1, 1, 2, 3))
            delivery = WebhookDelivery(
                id=uuid.uuid4(),
                created_at=at,
                endpoint_id=endpoint.id,
                event_type="message.created",
                payload={"n": n},
                status="delivered",
                attempts=tries,
            )
            session.add(delivery)
            await session.flush()
            for number in reversed(range(1, tries + 1)):
                session.add(
                    WebhookAttempt(
                        delivery_id=delivery.id,
                        number=number,
                        status_code=200 if number == tries else 503,
                        duration_ms=12.0,
                    )
                )
            logged[endpoint.id].append((at, delivery.id, tries))
    erp, crm = (e.id for e in endpoints)
    newest_first = sorted(logged[erp], reverse=True)

    pages: list[list[uuid.UUID]] = []
    before: uuid.UUID | None = None
    async with runtime.db.transaction(company.id) as session:
        while True:
            page = await webhooks.list_deliveries(session, erp, 6, before=before)
            if not page:
                break
            pages.append([d.id for d, _attempts in page])
            for delivery, attempts in page:
                assert delivery.endpoint_id == erp
                assert [a.number for a in attempts] == list(range(1, delivery.attempts + 1))
            before = page[-1][0].id
    assert [len(p) for p in pages] == [6, 6, 6, 2]
    assert [i for p in pages for i in p] == [ident for _at, ident, _tries in newest_first]

    async with runtime.db.transaction(company.id) as session:
        await webhooks.delete_endpoint(session, erp)
    async with runtime.db.transaction(company.id) as session:
        rows = await session.execute(
            select(WebhookDelivery.endpoint_id, func.count()).group_by(WebhookDelivery.endpoint_id)
        )
        left = dict(rows.all())
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
        kept = await webhooks.list_deliveries(session, crm, 50)
    assert left == {crm: 20}
    assert attempts == sum(tries for _at, _ident, tries in logged[crm])
    assert [d.id for d, _attempts in kept] == [
        ident for _at, ident, _tries in sorted(logged[crm], reverse=True)
    ]
