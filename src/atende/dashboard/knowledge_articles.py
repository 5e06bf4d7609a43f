"""Articles and FAQ entries written in the dashboard (owners and admins write; agents read).

An article is a knowledge-base document like an upload: Markdown under the source
``article:<slug>``, indexed by the same job, with a version recorded each time it is saved
(its Markdown kept, so that the editor opens the newest one again). The editor shows a
preview as the text is typed (htmx posts it to ``/app/knowledge/articles/preview``): the
Markdown rendered by markdown-it (CommonMark and tables) and sanitised by nh3, as the bot's
parser reads the same Markdown. ``/app/knowledge/articles/new?title=...&body=...`` opens the
editor with a draft (a knowledge gap's "write an article for this").
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import nh3
from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from atende.dashboard.auth import AdminPage, AgentPage, Member
from atende.dashboard.knowledge import HOME, STATUS_NAMES, can_edit, failure_text
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import InvalidInput
from atende.knowledge import service as knowledge
from atende.knowledge.text import TS_CONFIG

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ARTICLES = "/app/knowledge/articles"
MAX_BODY_CHARS = 100_000
Title = Annotated[str, Form(max_length=500)]
Body = Annotated[str, Form(max_length=MAX_BODY_CHARS)]
# what an article may show in the preview: the Markdown's own elements, nothing active
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip


def render_markdown(text: str) -> str:
    """An article's Markdown as safe HTML (links keep only http(s) and mail addresses)."""
    html = MarkdownIt("commonmark").enable("table").render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@router.get("/knowledge/articles")
async def articles_page(member: AgentPage) -> Response:
    async with member.tenant.transaction() as session:
        articles = await knowledge.list_documents(session, articles=True)
    return render(
        member.visitor,
        "knowledge_articles.html",
        articles=articles,
        editor=can_edit(member),
        status_names=STATUS_NAMES,
        errors={a.id: failure_text(member, a.error) for a in articles if a.status == "failed"},
    )


def _editor(
    member: Member,
    *,
    document: Any = None,
    title: str = "",
    body: str = "",
    language: str = "",
    status: int = 200,
    error: str | None = None,
) -> Response:
    return render(
        member.visitor,
        "knowledge_article.html",
        status=status,
        document=document,
        form={"title": title, "body": body, "language": language},
        preview=render_markdown(body) if body.strip() else "",
        languages_offered=list(TS_CONFIG),
        error=error,
        max_body=MAX_BODY_CHARS,
    )


@router.get("/knowledge/articles/new")
async def new_article(
    member: AdminPage,
    title: Annotated[str, Query(max_length=500)] = "",
    body: Annotated[str, Query(max_length=MAX_BODY_CHARS)] = "",
) -> Response:
    """The editor, empty or with a draft (``title``, ``body``)."""
    return _editor(member, title=title, body=body)


async def _save(
    member: Member, document_id: uuid.UUID | None, title: str, body: str, language: str
) -> Response:
    """Save the article (a new version of it); refused, the editor again as typed, saying why."""
    _ = gettext(member.visitor)
    problems = {
        "title": _("Give the article a title."),
        "body": _("Write the article's text."),
        "language": _("Choose one of the languages offered."),
    }
    try:
        if language and language not in TS_CONFIG:
            raise InvalidInput("language", field="language")
        async with member.tenant.transaction() as session:
            result = await knowledge.save_article(
                session,
                title=title,
                markdown=body,
                max_bytes=member.tenant.runtime.settings.max_document_bytes,
                jobs=member.tenant.runtime.jobs,
                author_id=member.user_id,
                document_id=document_id,
                lang=language or None,
            )
            saved = result.document.id
    except InvalidInput as exc:
        document = None
        if document_id is not None:
            async with member.tenant.transaction() as session:
                document = await knowledge.get_document(session, document_id)
        message = problems.get(exc.field or "") or failure_text(member, exc.message)
        return _editor(
            member, document=document, title=title, body=body, language=language, status=422, error=message
        )
    return redirect(f"{HOME}/{saved}", notice="article_saved")


@router.post("/knowledge/articles/new")
async def create_article(
    member: AdminPage, title: Title = "", body: Body = "", language: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    return await _save(member, None, title, body, language)


@router.get("/knowledge/articles/{document_id:uuid}")
async def edit_article(member: AdminPage, document_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        document = await knowledge.get_document(session, document_id)
        if not document.source.startswith(knowledge.ARTICLE_PREFIX):
            return redirect(f"{HOME}/{document_id}")
        body = await knowledge.article_markdown(session, document_id)
    return _editor(member, document=document, title=document.title, body=body)


@router.post("/knowledge/articles/{document_id:uuid}")
async def update_article(
    member: AdminPage,
    document_id: uuid.UUID,
    title: Title = "",
    body: Body = "",
    language: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    return await _save(member, document_id, title, body, language)


@router.post("/knowledge/articles/preview")
async def preview(member: AdminPage, body: Body = "") -> Response:
    """The editor's preview (htmx): the Markdown as the article will read."""
    _ = gettext(member.visitor)
    if not body.strip():
        return HTMLResponse(f'<p class="muted">{_("The preview appears here as you write.")}</p>')
    return HTMLResponse(render_markdown(body))
