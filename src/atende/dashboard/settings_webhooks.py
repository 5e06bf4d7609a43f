"""The outbound webhooks settings pages (owners and admins): the company's endpoints;
register one (its signing secret shown once, on the next page: ``shown_once``); change its
URL and events, enable or disable it, rotate its secret (the new one shown once), delete it;
and its delivery log, newest first, a page at a time. The rules (public destinations only,
known events, the grace of a rotated secret) are ``webhooks.service``'s, as ``/v1/webhooks``
applies them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Response

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import attempt
from atende.dashboard.i18n import N_
from atende.dashboard.shown_once import create_shown_once, take_shown
from atende.dashboard.web import PageRoute, redirect, render
from atende.webhooks import service as webhooks

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/webhooks"
SHOWN = "webhook_secret"
PAGE_SIZE = 25
# how long a rotated secret keeps signing beside the new one, as the rotation form offers it
GRACE_CHOICES = (
    (0, N_("Stop now")),
    (3600, N_("1 hour")),
    (86400, N_("24 hours")),
    (7 * 86400, N_("7 days")),
)
DELIVERY_STATUSES = {
    "pending": N_("Waiting"),
    "retrying": N_("Retrying"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
}
EVENT_NAMES = {
    "message.created": N_("A message was written (customer, bot or agent)"),
    "message.delivery_failed": N_("A message could not be delivered"),
    "conversation.state_changed": N_("A conversation changed state"),
    "conversation.handoff": N_("A conversation was handed to a person"),
    "queue.opened": N_("The queue opened (business hours began)"),
    "conversation.snoozed": N_("A conversation was snoozed"),
    "conversation.unsnoozed": N_("A snoozed conversation woke up"),
    "note.created": N_("A private note was written"),
    "message.rated": N_("A customer rated a bot answer (helpful or not)"),
    "conversation.csat_requested": N_("A satisfaction survey was sent to a customer"),
    "conversation.csat_received": N_("A customer answered a satisfaction survey"),
    "sla.warning": N_("An SLA target is close to breaching"),
    "sla.breached": N_("An SLA target was breached"),
}


def _endpoint_url(endpoint_id: str) -> str:
    return f"{HOME}/{endpoint_id}"


def _events() -> list[tuple[str, str]]:
    """Every event with what it means, in the service's order."""
    return [(event, EVENT_NAMES.get(event, event)) for event in webhooks.EVENTS]


async def _list_page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, object] | None = None
) -> Response:
    async with member.tenant.transaction() as session:
        endpoints = await webhooks.list_endpoints(session)
    return render(
        member.visitor,
        "settings_webhooks.html",
        status=status,
        endpoints=endpoints,
        events=_events(),
        error=error,
        form=form or {"url": "", "events": []},
    )


async def _endpoint_page(
    member: Member,
    endpoint_id: uuid.UUID,
    *,
    before: uuid.UUID | None = None,
    status: int = 200,
    error: str | None = None,
    form: dict[str, object] | None = None,
    secret: str | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        endpoint = await webhooks.get_endpoint(session, endpoint_id)
        rows = await webhooks.list_deliveries(session, endpoint_id, PAGE_SIZE + 1, before=before)
    deliveries = rows[:PAGE_SIZE]
    older = deliveries[-1][0].id if len(rows) > PAGE_SIZE else None
    return render(
        member.visitor,
        "settings_webhook.html",
        status=status,
        endpoint=endpoint,
        events=_events(),
        grace_choices=GRACE_CHOICES,
        delivery_statuses=DELIVERY_STATUSES,
        default_grace=member.visitor.runtime.settings.webhook_secret_grace_seconds,
        deliveries=deliveries,
        older=older,
        paged=before is not None,
        error=error,
        form=form or {"url": endpoint.url, "events": endpoint.events},
        secret=secret,
        grace_until=webhooks.grace_until(endpoint, member.visitor.runtime.clock()),
    )


@router.get("/settings/webhooks")
async def webhooks_page(member: AdminPage) -> Response:
    return await _list_page(member)


@router.post("/settings/webhooks")
async def create_endpoint(
    member: AdminPage,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    chosen = events or []
    runtime = member.visitor.runtime

    async def work() -> tuple[str, str]:
        async with member.tenant.transaction() as session:
            endpoint, secret = await webhooks.create_endpoint(
                session,
                secret_key=runtime.secret_key,
                url=url.strip(),
                events=chosen,
                allow_private=runtime.settings.webhook_allow_private_networks,
            )
            return str(endpoint.id), secret

    async def again(status: int, error: str) -> Response:
        return await _list_page(member, status=status, error=error, form={"url": url, "events": chosen})

    return await create_shown_once(
        member.visitor,
        work(),
        again,
        kind=SHOWN,
        then=_endpoint_url,
        notice="webhook_created",
    )


@router.get("/settings/webhooks/{endpoint_id}")
async def endpoint_page(
    member: AdminPage,
    endpoint_id: uuid.UUID,
    before: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    shown = take_shown(member.visitor, SHOWN)
    secret = shown[1] if shown and shown[0] == str(endpoint_id) else None
    return await _endpoint_page(member, endpoint_id, before=before, secret=secret)


@router.post("/settings/webhooks/{endpoint_id}")
async def update_endpoint(
    member: AdminPage,
    endpoint_id: uuid.UUID,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    chosen = events or []

    async def work() -> None:
        async with member.tenant.transaction() as session:
            await webhooks.update_endpoint(
                session,
                endpoint_id,
                url=url.strip(),
                events=chosen,
                allow_private=member.visitor.runtime.settings.webhook_allow_private_networks,
            )

    async def again(status: int, error: str) -> Response:
        form: dict[str, object] = {"url": url, "events": chosen}
        return await _endpoint_page(member, endpoint_id, status=status, error=error, form=form)

    return await attempt(member.visitor, work(), again) or redirect(
        f"{HOME}/{endpoint_id}", notice="webhook_saved"
    )


@router.post("/settings/webhooks/{endpoint_id}/enable")
async def enable_endpoint(member: AdminPage, endpoint_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await webhooks.set_endpoint_enabled(session, endpoint_id, True)
    return redirect(f"{HOME}/{endpoint_id}", notice="webhook_enabled")


@router.post("/settings/webhooks/{endpoint_id}/disable")
async def disable_endpoint(member: AdminPage, endpoint_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await webhooks.set_endpoint_enabled(session, endpoint_id, False)
    return redirect(f"{HOME}/{endpoint_id}", notice="webhook_disabled")


@router.post("/settings/webhooks/{endpoint_id}/rotate")
async def rotate_secret(
    member: AdminPage, endpoint_id: uuid.UUID, grace_seconds: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    runtime = member.visitor.runtime

    async def work() -> tuple[str, str]:
        try:
            grace = int(grace_seconds) if grace_seconds else runtime.settings.webhook_secret_grace_seconds
        except ValueError:
            grace = -1  # the service says what is allowed
        async with member.tenant.transaction() as session:
            _endpoint, secret = await webhooks.rotate_secret(
                session, endpoint_id, secret_key=runtime.secret_key, grace_seconds=grace, now=runtime.clock()
            )
            return str(endpoint_id), secret

    async def again(status: int, error: str) -> Response:
        return await _endpoint_page(member, endpoint_id, status=status, error=error)

    return await create_shown_once(
        member.visitor,
        work(),
        again,
        kind=SHOWN,
        then=_endpoint_url,
        notice="webhook_rotated",
    )


@router.post("/settings/webhooks/{endpoint_id}/delete")
async def delete_endpoint(member: AdminPage, endpoint_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await webhooks.delete_endpoint(session, endpoint_id)
    return redirect(HOME, notice="webhook_deleted")
