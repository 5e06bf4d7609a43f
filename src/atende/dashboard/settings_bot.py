"""The Bot settings page (owners and admins): the assistant's persona and instructions, the
company's own LLM and embeddings endpoints, and whether retrieval re-ranks its candidates
(and lets the LLM re-order the first few). Keys are write-only: the page says whether
one is stored and offers to replace or remove it, never shows it. Saving calls
``tenancy.assistant.replace_assistant``, as ``PUT /v1/company/assistant`` does, with the
API's own validation of an endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response
from pydantic import ValidationError

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.tenancy import assistant
from atende.tenancy.api import LLMEndpointIn
from atende.tenancy.assistant import EndpointChange, RerankShown

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ENDPOINTS = ("llm", "embeddings")


async def _page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None
) -> Response:
    async with member.tenant.transaction() as session:
        shown = await assistant.read_assistant(session, member.tenant.principal.company_id)
    if form is None:
        form = {
            "instructions": shown.instructions,
            "rerank": "1" if shown.rerank.enabled else "",
            "rerank_llm": "1" if shown.rerank.llm else "",
        }
        for name in ENDPOINTS:
            endpoint = getattr(shown, name)
            form[f"{name}_base_url"] = endpoint.base_url if endpoint else ""
            form[f"{name}_model"] = endpoint.model if endpoint else ""
    settings = member.visitor.runtime.settings
    # LLM re-ranking runs only with an LLM: the company's own or the deployment's
    has_llm = shown.llm is not None or bool(settings.llm_base_url and settings.llm_model)
    return render(
        member.visitor,
        "settings_bot.html",
        status=status,
        shown=shown,
        form=form,
        error=error,
        has_llm=has_llm,
    )


@router.get("/settings/bot")
async def bot_page(member: AdminPage) -> Response:
    return await _page(member)


def _endpoint(
    member: Member, name: str, base_url: str, model: str, key: str, clear: bool
) -> EndpointChange | None:
    """The endpoint a form section asks for (empty address: the deployment's), validated as
    the API validates it."""
    _ = gettext(member.visitor)
    base_url, model = base_url.strip(), model.strip()
    if not base_url and not model:
        return None
    try:
        checked = LLMEndpointIn.model_validate({"base_url": base_url, "model": model})
    except ValidationError as exc:
        wrong = {str(e["loc"][0]) for e in exc.errors()}
        what = _("LLM") if name == "llm" else _("Embeddings")
        if "base_url" in wrong:
            message = _("%(what)s: the address must be an http(s) URL, such as https://api.openai.com/v1.")
        else:
            message = _("%(what)s: give the model's name (1 to 200 characters).")
        raise Refused(message % {"what": what}) from None
    return EndpointChange(checked.base_url, checked.model, "" if clear else (key or None))


@router.post("/settings/bot")
async def save_bot(
    member: AdminPage,
    instructions: Annotated[str, Form(max_length=100_000)] = "",
    llm_base_url: Annotated[str, Form(max_length=10_000)] = "",
    llm_model: Annotated[str, Form(max_length=10_000)] = "",
    llm_api_key: Annotated[str, Form(max_length=10_000)] = "",
    llm_clear_key: Annotated[str, Form(max_length=10)] = "",
    embeddings_base_url: Annotated[str, Form(max_length=10_000)] = "",
    embeddings_model: Annotated[str, Form(max_length=10_000)] = "",
    embeddings_api_key: Annotated[str, Form(max_length=10_000)] = "",
    embeddings_clear_key: Annotated[str, Form(max_length=10)] = "",
    rerank: Annotated[str, Form(max_length=10)] = "",
    rerank_llm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    _ = gettext(member.visitor)
    form = {
        "instructions": instructions,
        "llm_base_url": llm_base_url,
        "llm_model": llm_model,
        "embeddings_base_url": embeddings_base_url,
        "embeddings_model": embeddings_model,
        "rerank": rerank,
        "rerank_llm": rerank_llm,
    }
    runtime = member.visitor.runtime

    async def work() -> None:
        if len(instructions) > 4000:
            raise Refused(_("The instructions can have up to 4000 characters."))
        if len(llm_api_key) > 500 or len(embeddings_api_key) > 500:
            raise Refused(_("A key can have up to 500 characters."))
        llm = _endpoint(member, "llm", llm_base_url, llm_model, llm_api_key, bool(llm_clear_key))
        embeddings = _endpoint(
            member,
            "embeddings",
            embeddings_base_url,
            embeddings_model,
            embeddings_api_key,
            bool(embeddings_clear_key),
        )
        async with member.tenant.transaction() as session:
            await assistant.replace_assistant(
                session,
                runtime.jobs,
                company_id=member.tenant.principal.company_id,
                secret_key=runtime.secret_key,
                allow_private=runtime.settings.llm_allow_private_networks,
                instructions=instructions,
                llm=llm,
                embeddings=embeddings,
                rerank=RerankShown(enabled=bool(rerank), llm=bool(rerank_llm)),
            )

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error, form=form)

    return await attempt(member.visitor, work(), again) or redirect("/app/settings/bot", notice="bot_saved")
