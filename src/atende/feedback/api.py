"""``/v1`` routes of CSAT: the company's survey settings, a conversation's surveys, and the
API channel's way to record a customer's answer (``POST /v1/csat/{survey_id}/answer``: the
company's own front end, told by the ``conversation.csat_requested`` webhook, asks its
customer and posts the score here). Handlers call ``feedback.service``, as the dashboard does."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from atende.conversations import service as conversations
from atende.feedback import service
from atende.feedback.csat_settings import CsatSettings
from atende.feedback.schemas import CsatAnswerIn, CsatSettingsIn, CsatSettingsOut, CsatSurveyOut
from atende.tenancy.deps import AdminTenant, AgentTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["customer feedback"])


def settings_out(settings: CsatSettings) -> CsatSettingsOut:
    return CsatSettingsOut.model_validate(settings.model_dump())


@router.get("/company/csat", response_model=CsatSettingsOut, summary="CSAT survey settings")
async def get_csat_settings(tenant: ViewerTenant) -> CsatSettingsOut:
    async with tenant.transaction() as session:
        return settings_out(await service.csat_settings(session, tenant.principal.company_id))


@router.put("/company/csat", response_model=CsatSettingsOut, summary="Change the CSAT survey settings")
async def put_csat_settings(body: CsatSettingsIn, tenant: AdminTenant) -> CsatSettingsOut:
    """Change the fields sent; those left out keep their stored values (`{"enabled": true}`
    turns the surveys on as they were set). Turning them on surveys resolutions from then on,
    never earlier ones. Answers the settings as stored."""
    async with tenant.transaction() as session:
        stored = await service.update_csat_settings(
            session,
            tenant.principal.company_id,
            body.model_dump(mode="json", exclude_unset=True),
            tenant.runtime.clock(),
        )
    return settings_out(stored)


@router.get(
    "/conversations/{conversation_id}/csat",
    response_model=list[CsatSurveyOut],
    summary="A conversation's CSAT surveys and answers",
)
async def conversation_csat(conversation_id: uuid.UUID, tenant: ViewerTenant) -> list[CsatSurveyOut]:
    """One survey per resolution surveyed, newest first, with the customer's score and comment."""
    async with tenant.transaction() as session:
        await conversations.get_conversation(session, conversation_id)
        surveys = await service.conversation_surveys(session, conversation_id)
        return [CsatSurveyOut.model_validate(s) for s in surveys]


@router.post(
    "/csat/{survey_id}/answer",
    response_model=CsatSurveyOut,
    summary="Record a customer's CSAT answer (API channel)",
    responses={409: {"description": "The survey's answer window has passed"}},
)
async def answer_csat(survey_id: uuid.UUID, body: CsatAnswerIn, tenant: AgentTenant) -> CsatSurveyOut:
    """The customer's score (1-5) and optional comment, for the survey a
    `conversation.csat_requested` event named. Sent again within the survey's window
    (`closes_at`), it replaces the answer; after it, 409 `survey_closed`. The conversation
    stays as it is (a resolved one is not reopened). `conversation.csat_received` follows."""
    async with tenant.transaction() as session:
        survey = await service.record_answer(
            session,
            tenant.runtime.jobs,
            survey_id,
            score=body.score,
            comment=body.comment,
            via="api",
            now=tenant.runtime.clock(),
        )
        return CsatSurveyOut.model_validate(survey)
