"""The dashboard's router, mounted by the app: its pages under ``/app``, every one behind
the CSRF check for state-changing requests, its static files, and a 404 page for the rest."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from atende.dashboard import (
    access,
    analytics,
    conversation,
    email_frame,
    gaps,
    home,
    inbox,
    knowledge,
    knowledge_articles,
    knowledge_try,
    live,
    logs,
    logs_audit,
    logs_ratings,
    media,
    members,
    platform,
    settings,
    settings_api_keys,
    settings_bot,
    settings_channels,
    settings_company,
    settings_email,
    settings_feedback,
    settings_hours,
    settings_knowledge,
    settings_sla,
    settings_teams,
    settings_webhooks,
    settings_whatsapp,
    settings_widget,
)
from atende.dashboard.auth import csrf_protected

PREFIX = "/app"
router = APIRouter()
router.include_router(home.assets, prefix=PREFIX)
pages = APIRouter(dependencies=[Depends(csrf_protected)])
for module in (
    home,
    access,
    members,
    platform,
    inbox,
    analytics,
    conversation,
    logs,
    email_frame,
    gaps,
    live,
    media,
    settings,
    settings_company,
    settings_hours,
    settings_widget,
    settings_teams,
    settings_sla,
    settings_bot,
    settings_feedback,
    settings_knowledge,
    settings_api_keys,
    settings_webhooks,
    settings_channels,
    settings_whatsapp,
    settings_email,
    knowledge,
    knowledge_articles,
    logs_audit,
    logs_ratings,
    knowledge_try,
):
    pages.include_router(module.router, prefix=PREFIX)
pages.include_router(home.fallback, prefix=PREFIX)  # last: whatever no page matched
router.include_router(pages)
