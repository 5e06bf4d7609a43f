"""CSAT surveys: sending one after each resolution, recording the customer's answer.

``send_due`` (the periodic job's, per company) finds the company's resolutions older than
its delay that are still standing (``conversations.standing_resolutions``: not reopened
since) on a surveyed channel, and sends one survey for each: a row in ``csat_surveys``
(unique per resolution: a second worker's insert does nothing) and a ``system`` message in
the conversation through the outbox, its ``meta["csat"]`` telling the channel to show it in
its own form (the web chat's stars, WhatsApp's buttons or template, e-mail's rating links);
the ``conversation.csat_requested`` webhook carries it for the API's clients.

``record_answer`` takes a score (1-5) and an optional comment, through any channel, until
the survey closes (``closes_at``): a later answer replaces the earlier one; after it,
``SurveyClosed``. An answer never changes the conversation's state: the channels hand a
rating in without reopening the conversation (their intake), and the web chat, the e-mail
page and the API record it without a message at all. ``conversation.csat_received`` carries it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.conversations import service as conversations
from atende.db.pubsub import publish
from atende.db.scope import company_of, get_or_404
from atende.errors import Conflict, InvalidInput, NotFound
from atende.feedback.csat_settings import CsatSettings
from atende.feedback.models import CsatSurvey
from atende.feedback.ratings import clean_comment
from atende.jobs.queue import JobQueue
from atende.observability import metrics
from atende.tenancy import service as tenancy
from atende.tenancy.settings import read_section
from atende.webhooks import service as webhooks

META = "csat"  # a survey message's meta key: {"survey_id", "scale", "closes_at", ...}
SCALE = 5
COMMENT_MAX = 2000
# how far back the job looks past its last survey: a resolution whose transaction committed
# late (its time is when it began) is still found
LOOK_BACK = timedelta(minutes=2)
# resolutions older than their delay by more than this are never surveyed (a job that was
# down for days does not survey last week's customers)
STALE_AFTER = timedelta(days=2)
BATCH = 200  # resolutions one run considers, oldest first
SENT, SKIPPED = "sent", "skipped"
# after a first answer by button (WhatsApp), for how long the customer's next text is taken as
# the survey's comment
COMMENT_WINDOW = timedelta(minutes=10)
NO_TEMPLATE = (
    "the customer's 24-hour WhatsApp window had closed and no approved template is configured "
    "(Settings → Feedback, WhatsApp template)"
)
NO_TEMPLATE_AT_DELIVERY = (
    "the survey was queued inside the customer's 24-hour WhatsApp window, which had closed when "
    "it went out, and no approved template is configured (Settings → Feedback, WhatsApp template)"
)
REQUESTED = "conversation.csat_requested"
RECEIVED = "conversation.csat_received"


class SurveyClosed(Conflict):
    """The survey's answer window has passed: its answer can no longer be given or changed."""

    code = "survey_closed"


async def csat_settings(session: AsyncSession, company_id: uuid.UUID) -> CsatSettings:
    return read_section(await tenancy.get_company(session, str(company_id)), CsatSettings)


async def update_csat_settings(
    session: AsyncSession, company_id: uuid.UUID, changes: dict[str, Any], now: datetime
) -> CsatSettings:
    """Change the settings named in ``changes`` (the others keep their stored values); turning
    the surveys on stamps ``enabled_at`` (resolutions before it are never surveyed). Validated
    whole before anything is stored."""
    company = await tenancy.get_company(session, str(company_id), for_update=True)
    before = read_section(company, CsatSettings)
    merged = {**before.model_dump(mode="json"), **changes}
    if merged.get("enabled") and not before.enabled:
        merged["enabled_at"] = now.isoformat()
    try:
        stored = CsatSettings.model_validate(merged)
    except ValueError as exc:
        raise InvalidInput(f"invalid CSAT settings: {exc}") from exc
    fields = audit.changed_fields(before.model_dump(mode="json"), stored.model_dump(mode="json"))
    if fields:
        audit.record(session, "settings.csat_changed", ("company", company_id), {"fields": fields})
    company.settings = {**(company.settings or {}), "csat": stored.model_dump(mode="json")}
    return stored


async def companies_surveying(session: AsyncSession) -> list[uuid.UUID]:
    """The companies whose CSAT surveys are on (a platform session's look)."""
    rows = await session.execute(
        text("SELECT id FROM companies WHERE (settings -> 'csat' ->> 'enabled') = 'true' ORDER BY id")
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class Sent:
    survey_id: uuid.UUID
    conversation_id: uuid.UUID
    channel: str


async def send_due(
    session: AsyncSession,
    jobs: JobQueue,
    now: datetime,
) -> list[Sent]:
    """Send the session's company's due surveys (one per standing resolution older than the
    delay, on a surveyed channel); what was sent."""
    company_id = company_of(session)
    settings = await csat_settings(session, company_id)
    if not settings.enabled or settings.enabled_at is None or not settings.channels:
        return []
    until = now - timedelta(seconds=settings.delay_seconds)
    latest = await session.scalar(
        select(CsatSurvey.resolved_at).order_by(CsatSurvey.resolved_at.desc()).limit(1)
    )
    after = max(
        settings.enabled_at, until - STALE_AFTER, (latest - LOOK_BACK) if latest else settings.enabled_at
    )
    # the resolutions considered already (sent or skipped) since then: read past, not again
    considered = list(
        await session.scalars(select(CsatSurvey.transition_id).where(CsatSurvey.resolved_at > after))
    )
    due = await conversations.standing_resolutions(
        session, after=after, until=until, channels=settings.channels, exclude=considered, limit=BATCH
    )
    if not due:
        return []
    company = await tenancy.get_company(session, str(company_id))
    sent: list[Sent] = []
    for resolution in due:
        survey = await _send(session, jobs, settings, resolution, company.default_language, now)
        if survey is not None:
            sent.append(Sent(survey.id, survey.conversation_id, survey.channel))
    return sent


async def _send(
    session: AsyncSession,
    jobs: JobQueue,
    settings: CsatSettings,
    resolution: conversations.Resolution,
    default_language: str,
    now: datetime,
) -> CsatSurvey | None:
    conversation = await conversations.get_conversation(session, resolution.conversation_id, for_update=True)
    if conversation.state != "resolved":  # reopened since the look: not this resolution's any more
        return None
    language = (conversation.language or default_language or "en")[:2]
    window = await conversations.reply_window(session, conversation)
    skip_reason = NO_TEMPLATE if not window.open and settings.whatsapp_template is None else None
    closes_at = now + timedelta(hours=settings.answer_window_hours)
    survey_id = uuid.uuid4()
    inserted = await session.scalar(
        pg_insert(CsatSurvey)
        .values(
            id=survey_id,
            company_id=conversation.company_id,
            conversation_id=conversation.id,
            transition_id=resolution.transition_id,
            channel=conversation.channel,
            language=language,
            resolved_at=resolution.resolved_at,
            # a skipped survey (nothing the channel would take) is kept, never sent: the job
            # considers its resolution once
            status=SENT if skip_reason is None else SKIPPED,
            skip_reason=skip_reason,
            sent_at=now if skip_reason is None else None,
            closes_at=closes_at if skip_reason is None else now,
            spent_links=[],
        )
        .on_conflict_do_nothing(index_elements=["transition_id"])
        .returning(CsatSurvey.id)
    )
    if inserted is None or skip_reason is not None:  # another worker surveyed it first, or skipped
        return None
    question = settings.question(language)
    meta: dict[str, Any] = {
        "survey_id": str(survey_id),
        "scale": SCALE,
        "question": question,
        "language": language,
        "closes_at": closes_at.isoformat(),
    }
    if not window.open and settings.whatsapp_template is not None:
        meta["template"] = settings.whatsapp_template.model_dump()
    message = await conversations.add_reply(
        session, jobs, conversation, author="system", text=question, language=language, meta={META: meta}
    )
    survey = await get_or_404(session, CsatSurvey, survey_id, "survey")
    survey.message_id = message.id
    metrics.count_on_commit(session, metrics.CSAT_SURVEYS_SENT, conversation.channel)
    await webhooks.emit(
        session,
        jobs,
        REQUESTED,
        {
            "survey_id": str(survey_id),
            "conversation_id": str(conversation.id),
            "channel": conversation.channel,
            "language": language,
            "question": question,
            "scale": SCALE,
            "message_id": str(message.id),
            "answer_until": closes_at.isoformat(),
        },
    )
    return survey


async def template_at_delivery(
    session: AsyncSession, survey_id: uuid.UUID, now: datetime
) -> dict[str, Any] | None:
    """A survey queued while the customer's WhatsApp window was open is going out after it
    closed (the outbox was behind, or retried): the company's approved template to send
    instead, or ``None`` when it has none, the survey then marked skipped (never sent,
    answerable no more) with the reason."""
    settings = await csat_settings(session, company_of(session))
    if settings.whatsapp_template is not None:
        return settings.whatsapp_template.model_dump()
    survey = await get_survey(session, survey_id, for_update=True)
    if survey.answered_at is None:
        survey.status, survey.skip_reason = SKIPPED, NO_TEMPLATE_AT_DELIVERY
        survey.sent_at, survey.closes_at = None, min(survey.closes_at, now)
    return None


async def awaiting_comment(
    session: AsyncSession, conversation_id: uuid.UUID, via: str, now: datetime
) -> CsatSurvey | None:
    """The conversation's survey first answered on ``via`` less than ``COMMENT_WINDOW`` ago,
    open and with no comment yet: the customer was asked for one, and their next text is it."""
    found: CsatSurvey | None = await session.scalar(
        select(CsatSurvey)
        .where(
            CsatSurvey.conversation_id == conversation_id,
            CsatSurvey.status == SENT,
            CsatSurvey.answered_via == via,
            CsatSurvey.comment.is_(None),
            CsatSurvey.answered_at > now - COMMENT_WINDOW,
            CsatSurvey.closes_at > now,
        )
        .order_by(CsatSurvey.answered_at.desc())
        .limit(1)
    )
    return found


def _check_score(score: int) -> None:
    if not 1 <= score <= SCALE:
        raise InvalidInput(f"score must be a whole number from 1 to {SCALE}; got {score}", field="score")


async def get_survey(session: AsyncSession, survey_id: uuid.UUID, *, for_update: bool = False) -> CsatSurvey:
    return await get_or_404(session, CsatSurvey, survey_id, "survey", for_update=for_update)


async def conversation_surveys(session: AsyncSession, conversation_id: uuid.UUID) -> list[CsatSurvey]:
    """The conversation's surveys sent, newest first (not those skipped: never sent)."""
    return list(
        await session.scalars(
            select(CsatSurvey)
            .where(CsatSurvey.conversation_id == conversation_id, CsatSurvey.status == SENT)
            .order_by(CsatSurvey.sent_at.desc())
        )
    )


async def record_answer(
    session: AsyncSession,
    jobs: JobQueue,
    survey_id: uuid.UUID,
    *,
    score: int | None,
    comment: str | None,
    via: str,
    now: datetime,
    conversation_id: uuid.UUID | None = None,
    spend_link: str | None = None,
) -> CsatSurvey:
    """Record (or change) a survey's answer: ``score`` 1-5 (``None``: keep the score given,
    a comment alone needs one), ``comment`` (``None``: keep it; ``""`` clears it).
    ``conversation_id``: the caller's conversation, which the survey must be of (a web chat
    visitor answers only their own). ``spend_link``: an e-mail link's key, refused when
    already used (``Conflict``). ``SurveyClosed`` after ``closes_at``."""
    survey = await get_survey(session, survey_id, for_update=True)
    if conversation_id is not None and survey.conversation_id != conversation_id:
        raise NotFound(f"no survey {survey_id}")
    if survey.closes_at <= now:
        closed = survey.closes_at.isoformat()
        raise SurveyClosed(f"the survey closed at {closed}: its answer can no longer be given or changed")
    if spend_link is not None:
        spent = list(survey.spent_links or [])
        if spend_link in spent:
            raise Conflict("this rating link was used already: each link works once")
        survey.spent_links = [*spent, spend_link]
    if score is not None:
        _check_score(score)
    elif survey.score is None:
        raise InvalidInput("give a score (1 to 5) before a comment", field="score")
    cleaned = clean_comment(comment, COMMENT_MAX)
    first = survey.answered_at is None
    if score is not None:
        survey.score = score
    if comment is not None:
        survey.comment = cleaned
    survey.answered_via = via
    if first:
        survey.answered_at = now
    else:
        survey.changed_at = now
    await session.flush()
    if first and survey.score is not None:
        metrics.count_on_commit(
            session, metrics.CSAT_RESPONSES, survey.channel, metrics.csat_rating(survey.score)
        )
    await publish(session, str(survey.conversation_id), "csat", survey_id=str(survey.id), score=survey.score)
    await webhooks.emit(session, jobs, RECEIVED, answer_event(survey, changed=not first))
    return survey


def answer_event(survey: CsatSurvey, *, changed: bool) -> dict[str, Any]:
    return {
        "survey_id": str(survey.id),
        "conversation_id": str(survey.conversation_id),
        "channel": survey.channel,
        "score": survey.score,
        "comment": survey.comment,
        "via": survey.answered_via,
        "answered_at": survey.answered_at.isoformat() if survey.answered_at else None,
        "changed": changed,
    }
