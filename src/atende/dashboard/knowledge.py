"""The knowledge base's pages: the documents (agents read them; owners and admins change them).

- ``/app/knowledge``: every document with its status, language, chunk count, when it changed
  and until when it is valid (expired and soon-expiring ones marked, and filterable); rows
  still queued, indexing or embedding refresh themselves (htmx polling ``?part=rows``; one
  being embedded says "searchable by words; meaning being indexed: 120 of 400 chunks"
  until it is ready). Admins add files
  (several at once, picked or dropped on the drop zone) and web addresses: with JavaScript
  (``knowledge.js``) each file is sent on its own, with a progress bar, then its status is
  polled (``/app/knowledge/status``) until it is ready or failed with the reason; without,
  the form posts everything at once and the page lists what was accepted and what was not.
- ``/app/knowledge/{id}``: one document: its facts, its metadata (a form for admins), its
  chunks as the bot sees them, its versions, re-index and delete (with a confirmation page).

Files go through ``knowledge.service.submit`` and the ``knowledge:index_document`` job, as the
API's do; a failure's reason (English, for the API) is said in the reader's language here
(``failure_text``).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from atende.dashboard.auth import AdminPage, AgentPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import company_zone
from atende.dashboard.web import PageRoute, explain, gettext, now, redirect, render
from atende.errors import AtendeError, InvalidInput
from atende.knowledge import service as knowledge
from atende.knowledge.models import Document
from atende.knowledge.schemas import OWN_FIELDS, DocumentIn
from atende.knowledge.sources import read_submission
from atende.knowledge.text import TS_CONFIG
from atende.teams import service as teams
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/knowledge"
UPLOAD_PATH = "/app/knowledge/upload"  # several files in one form: a larger body (atende.app)
MAX_FILES = 20  # files in one form sent without JavaScript
CHUNKS_SHOWN = 300
PAGE_SIZE = 100  # documents a page
PENDING = ("queued", "indexing", "embedding")  # pages showing one refresh themselves
ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt,.csv"

STATUS_NAMES = {
    "uploading": N_("Uploading"),
    "queued": N_("Queued"),
    "indexing": N_("Indexing"),
    "embedding": N_("Searchable by words"),
    "ready": N_("Ready"),
    "failed": N_("Failed"),
}
TYPE_NAMES = {
    "pdf": "PDF",
    "docx": "DOCX",
    "html": "HTML",
    "markdown": "Markdown",
    "text": N_("Text"),
    "csv": N_("CSV FAQ"),
}
EXPIRY_CHOICES = (
    ("", N_("Any")),
    ("expired", N_("Expired")),
    ("expiring", N_("Expiring within 30 days")),
)
AUDIENCES = (("customers", N_("Customers")), ("internal", N_("Internal (the team)")))

# a failure's reason as the services word it (English, for the API) -> what a person reads
FAILURES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"the PDF has no text layer", N_("This PDF has no text we can read (scanned image?).")),
        (
            r"the PDF is password-protected",
            N_("This PDF is protected by a password. Upload a copy without one."),
        ),
        (
            r"the PDF has (?P<pages>\d+) pages; the limit is (?P<limit>\d+)",
            N_("This PDF has %(pages)s pages; the most we read is %(limit)s."),
        ),
        (r"the PDF cannot be read", N_("This file could not be read as a PDF. Is it a whole PDF file?")),
        (
            r"the file is not a (pdf|docx)",
            N_("This file is not a Word document (DOCX), though its name says so."),
        ),
        (
            r"the (docx|DOCX) expands to",
            N_("This Word document unpacks to far too much data; it was refused."),
        ),
        (r"the DOCX cannot be read", N_("This file could not be read as a Word document (DOCX).")),
        (r"(the DOCX|the document) has no readable text", N_("We found no text to index in this file.")),
        (r"the CSV cannot be read", N_("This CSV file could not be read.")),
        (r"the CSV is empty", N_("This CSV file is empty.")),
        (
            r"a CSV FAQ needs a header row",
            N_(
                "A CSV FAQ needs a header row with a question column (question, pergunta or pregunta) "
                "and an answer column (answer, resposta or respuesta)."
            ),
        ),
        (r"the CSV has no row with both", N_("No row of this CSV has both a question and an answer.")),
        (
            r"the embeddings endpoint failed",
            N_("The embeddings service did not answer. Re-index the document later."),
        ),
        (
            r"the database was unavailable",
            N_("The database was unavailable while the document was indexed. Re-index it."),
        ),
        (
            r"the document could not be stored",
            N_(
                "The document could not be stored: a passage is too long "
                "or holds a character that cannot be kept."
            ),
        ),
        (
            r"the (document|file) is (larger than )?\d+ bytes",
            N_("This file is larger than the most a document may be (%(limit)s)."),
        ),
        (
            r"cannot read '.*': supported extensions are",
            N_("This kind of file cannot be read. Send PDF, DOCX, HTML, Markdown, text or CSV files."),
        ),
        (r"the URL answered HTTP (?P<code>\d+)", N_("The address answered with an error (HTTP %(code)s).")),
        (
            r"the URL serves",
            N_(
                "The address serves a kind of file that cannot be read "
                "(not a web page, PDF, DOCX, text or CSV)."
            ),
        ),
        (r"the URL did not answer within", N_("The address did not answer in time.")),
        (r"the URL redirects more than", N_("The address redirects too many times.")),
        (r"cannot resolve the .* host", N_("The address's site could not be found.")),
        (
            r"resolves to .*(private|loopback|reserved|link-local)",
            N_("The address is on a private network, which atende does not fetch from."),
        ),
        (
            r"is not a valid URL|string should match pattern",
            N_("Type a web address that starts with https:// or http://."),
        ),
        (r"the URL cannot be fetched", N_("The address could not be fetched.")),
        (
            r"an internal error stopped the indexing",
            N_(
                "An internal error stopped the indexing. Re-index the document; "
                "if it fails again, tell your administrator."
            ),
        ),
    )
)


def failure_text(member: Member, reason: str | None) -> str:
    """Why a document failed or was refused, in the reader's language."""
    _ = gettext(member.visitor)
    reason = reason or ""
    for pattern, message in FAILURES:
        found = pattern.search(reason)
        if found:
            values = {"limit": _limit(member), **{k: v for k, v in found.groupdict().items() if v}}
            return _(message) % values if "%(" in message else _(message)
    return _("It could not be indexed: %(reason)s") % {"reason": reason}


def _limit(member: Member) -> str:
    size = member.visitor.runtime.settings.max_document_bytes
    return f"{size / 1_048_576:.1f} MB".replace(".0 ", " ")


def can_edit(member: Member) -> bool:
    """Whether the member may change the knowledge base (the editor's pages are ``AdminPage``)."""
    return member.role.allows(Role.admin)


def expiry_of(document: Document, moment: datetime) -> str | None:
    """``expired``, ``expiring`` (within ``EXPIRING_WITHIN``) or ``None``."""
    if document.valid_until is None:
        return None
    if document.valid_until < moment:
        return "expired"
    if document.valid_until < moment + knowledge.EXPIRING_WITHIN:
        return "expiring"
    return None


def _filters(status: str, expiry: str) -> dict[str, str]:
    return {
        "status": status if status in STATUS_NAMES and status != "uploading" else "",
        "expiry": expiry if expiry in ("expired", "expiring") else "",
    }


async def _zone(session: AsyncSession, member: Member) -> tzinfo:
    return company_zone(await teams.company_hours(session, member.tenant.principal.company_id))


async def _list(member: Member, filters: dict[str, str], page: int = 1) -> dict[str, Any]:
    moment = now(member.visitor)
    async with member.tenant.transaction() as session:
        found = await knowledge.list_documents(
            session,
            status=filters["status"] or None,
            expiry=filters["expiry"] or None,
            now=moment,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        expired, expiring = await knowledge.expiry_counts(session, moment)
        zone = await _zone(session, member)
        embedded = await knowledge.embedding_progress(session, found[:PAGE_SIZE])
    documents = found[:PAGE_SIZE]
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return {
        "documents": documents,
        "page": page,
        "next_page": page + 1 if len(found) > PAGE_SIZE else None,
        "page_query": query + ("&" if query else "") + f"page={page}" if page > 1 else query,
        "expired_count": expired,
        "expiring_count": expiring,
        "expiry": {d.id: expiry_of(d, moment) for d in documents},
        "errors": {d.id: failure_text(member, d.error) for d in documents if d.status == "failed"},
        "pending": any(d.status in PENDING for d in documents),
        "embedded": embedded,
        "filters": filters,
        "query": query,
        "zone": zone,
        "status_names": STATUS_NAMES,
        "type_names": TYPE_NAMES,
    }


async def _list_page(
    member: Member,
    filters: dict[str, str],
    *,
    page: int = 1,
    sent: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> Response:
    return render(
        member.visitor,
        "knowledge.html",
        status=status,
        editor=can_edit(member),
        expiry_choices=EXPIRY_CHOICES,
        accept=ACCEPT,
        sent=sent,
        **await _list(member, filters, page),
    )


@router.get("/knowledge")
async def documents_page(
    member: AgentPage,
    status: Annotated[str, Query(max_length=20)] = "",
    expiry: Annotated[str, Query(max_length=20)] = "",
    part: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = _filters(status, expiry)
    if part == "rows":
        return render(member.visitor, "_knowledge_rows.html", **await _list(member, filters, page))
    return await _list_page(member, filters, page=page)


def status_label(member: Member, document: Document, embedded: int | None) -> str:
    """A document's status in words; one being embedded says how far it got."""
    _ = gettext(member.visitor)
    if document.status == "embedding" and embedded is not None:
        return _("Searchable by words; meaning being indexed: %(done)s of %(total)s chunks") % {
            "done": embedded,
            "total": document.chunk_count,
        }
    return _(STATUS_NAMES.get(document.status, document.status))


def _state(member: Member, document: Document, embedded: int | None = None) -> dict[str, Any]:
    """A document's status as the upload list shows it."""
    return {
        "id": str(document.id),
        "title": document.title,
        "status": document.status,
        "label": status_label(member, document, embedded),
        "error": failure_text(member, document.error) if document.status == "failed" else None,
        "url": f"{HOME}/{document.id}",
        "final": document.status not in PENDING,
    }


async def _submit(member: Member, *, source: str, data: bytes, content_type: str | None = None) -> Document:
    settings = member.tenant.runtime.settings
    async with member.tenant.transaction() as session:
        result = await knowledge.submit(
            session,
            source=source,
            data=data,
            max_bytes=settings.max_document_bytes,
            content_type=content_type,
            jobs=member.tenant.runtime.jobs,
            author_id=member.user_id,
        )
        return result.document


async def _send_file(member: Member, sent: UploadFile) -> Document:
    name = PurePath((sent.filename or "").replace("\\", "/")).name.strip()[:200]
    if not name:
        raise InvalidInput("the file has no name")
    limit = member.tenant.runtime.settings.max_document_bytes
    data = await sent.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"the file is larger than {limit} bytes")
    return await _submit(member, source=name, data=data)


async def _send_url(member: Member, url: str) -> Document:
    try:
        body = DocumentIn(url=url)
    except ValidationError as exc:
        raise InvalidInput(f"'{url}' is not a valid URL") from exc
    submitted = await read_submission(body, member.tenant.runtime.settings)
    return await _submit(
        member, source=submitted.source, data=submitted.data, content_type=submitted.content_type
    )


@router.post("/knowledge/upload")
async def upload(member: AdminPage, request: Request) -> Response:
    """Files and web addresses to index. From ``knowledge.js`` (``X-Upload: one``) one file or
    address a request, answered in JSON (its status, or why it was refused); from a plain
    form, all of them, answered with the documents page listing each one's outcome."""
    _ = gettext(member.visitor)
    form = await request.form(max_files=MAX_FILES)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    urls_field = form.get("urls")
    urls = [u.strip() for u in (urls_field if isinstance(urls_field, str) else "").splitlines() if u.strip()]
    single = request.headers.get("x-upload") == "one"
    outcomes: list[dict[str, Any]] = []
    for name, work in [(f.filename or "", _send_file(member, f)) for f in files] + [
        (u, _send_url(member, u)) for u in urls[:MAX_FILES]
    ]:
        try:
            document = await work
        except AtendeError as exc:
            message = (
                failure_text(member, exc.message)
                if isinstance(exc, InvalidInput)
                else explain(member.visitor, exc)
            )
            outcomes.append({"name": name, "ok": False, "error": message})
        else:
            outcomes.append({"name": name, "ok": True, **_state(member, document)})
    if single:
        if not outcomes:
            return JSONResponse({"error": _("Choose a file or type a web address.")}, status_code=422)
        outcome = outcomes[0]
        return JSONResponse(outcome, status_code=202 if outcome["ok"] else 422)
    if not outcomes:
        sent = [{"name": "", "ok": False, "error": _("Choose a file or type a web address.")}]
        return await _list_page(member, _filters("", ""), sent=sent, status=422)
    refused = any(not o["ok"] for o in outcomes)
    return await _list_page(member, _filters("", ""), sent=outcomes, status=422 if refused else 200)


@router.get("/knowledge/status")
async def statuses(
    member: AgentPage, ids: Annotated[list[uuid.UUID], Query(alias="id", max_length=50)]
) -> Response:
    """The status of these documents (the upload list polls it), each as ``_state``."""
    async with member.tenant.transaction() as session:
        found = {d.id: d for d in await knowledge.get_documents(session, ids)}
        embedded = await knowledge.embedding_progress(session, list(found.values()))
    return JSONResponse([_state(member, found[i], embedded.get(i)) for i in ids if i in found])


def _local_date(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).date().isoformat() if value else ""


async def _document_page(
    member: Member,
    document_id: uuid.UUID,
    *,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        document = await knowledge.get_document(session, document_id)
        chunks = await knowledge.list_chunks(session, document_id, limit=CHUNKS_SHOWN)
        versions = await knowledge.list_versions(session, document_id)
        zone = await _zone(session, member)
        authors = {a.user.id: a.user.name or a.user.email for a in await teams.agents(session)}
        embedded = await knowledge.embedding_progress(session, [document])
    values = form or {
        "language": document.language,
        "tags": ", ".join(document.tags or ()),
        "product": document.product or "",
        "audience": document.audience or "",
        "valid_from": _local_date(document.valid_from, zone),
        "valid_until": _local_date(document.valid_until, zone),
        "custom": "\n".join(f"{k} = {v}" for k, v in (document.meta or {}).items()),
    }
    indexed = next((v.version for v in versions if v.content_hash == document.content_hash), None)
    return render(
        member.visitor,
        "knowledge_document.html",
        status=status,
        document=document,
        chunks=chunks,
        more_chunks=max(0, document.chunk_count - len(chunks)),
        versions=versions,
        indexed_version=indexed,
        authors=authors,
        zone=zone,
        expiry=expiry_of(document, now(member.visitor)),
        failure=failure_text(member, document.error) if document.status == "failed" else None,
        pending=document.status in PENDING,
        embedded=embedded,
        editor=can_edit(member),
        article=document.source.startswith(knowledge.ARTICLE_PREFIX),
        status_names=STATUS_NAMES,
        type_names=TYPE_NAMES,
        languages_offered=list(TS_CONFIG),
        audiences=AUDIENCES,
        form=values,
        error=error,
        errors=errors or {},
    )


@router.get("/knowledge/{document_id:uuid}")
async def document_page(
    member: AgentPage, document_id: uuid.UUID, part: Annotated[str, Query(max_length=10)] = ""
) -> Response:
    if part == "status":
        async with member.tenant.transaction() as session:
            document = await knowledge.get_document(session, document_id)
            embedded = await knowledge.embedding_progress(session, [document])
        if document.status not in PENDING:  # done: the page again, with its chunks
            return Response(status_code=200, headers={"HX-Refresh": "true"})
        return render(
            member.visitor,
            "_knowledge_status.html",
            document=document,
            embedded=embedded,
            status_names=STATUS_NAMES,
        )
    return await _document_page(member, document_id)


def _day(value: str, zone: tzinfo, field: str, *, end: bool) -> datetime | None:
    """A date field (``YYYY-MM-DD``, the company's zone) as the first or last instant of that day."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field} is not a date", field=field) from None
    if end:
        return datetime.combine(day + timedelta(days=1), time.min, zone) - timedelta(microseconds=1)
    return datetime.combine(day, time.min, zone)


def _custom(text: str) -> dict[str, str]:
    """``key = value`` lines as key/values (blank lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or key.strip() in OWN_FIELDS:
            raise InvalidInput("each custom line is key = value", field="custom")
        out[key.strip()[:60]] = value.strip()[:500]
    if len(out) > 30:
        raise InvalidInput("at most 30 custom values", field="custom")
    return out


@router.post("/knowledge/{document_id:uuid}/metadata")
async def save_metadata(
    member: AdminPage,
    document_id: uuid.UUID,
    language: Annotated[str, Form(max_length=5)] = "",
    tags: Annotated[str, Form(max_length=2000)] = "",
    product: Annotated[str, Form(max_length=200)] = "",
    audience: Annotated[str, Form(max_length=100)] = "",
    valid_from: Annotated[str, Form(max_length=20)] = "",
    valid_until: Annotated[str, Form(max_length=20)] = "",
    custom: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """The metadata form: applies at once; a new language indexes the document again."""
    _ = gettext(member.visitor)
    typed = {
        "language": language,
        "tags": tags,
        "product": product,
        "audience": audience,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "custom": custom,
    }
    problems = {
        "valid_from": _("Choose a date, or leave it empty."),
        "valid_until": _("The end of validity must not be before its start."),
        "tags": _("Tags have at most 60 characters each, and a document at most 30 of them."),
        "custom": _(
            "Write one key = value a line (at most 30); product, audience, language, tags and the "
            "dates have fields of their own."
        ),
        "language": _("Choose one of the languages offered."),
        "file": _("This document's file was not kept (it was sent before versions were). Upload it again."),
    }
    try:
        async with member.tenant.transaction() as session:
            zone = await _zone(session, member)
            tag_list = knowledge.clean_tags(tags.split(","))
            if len(tag_list) > 30 or any(len(t) > 60 for t in tag_list):
                raise InvalidInput("too many or too long tags", field="tags")
            start = _day(valid_from, zone, "valid_from", end=False)
            end = _day(valid_until, zone, "valid_until", end=True)
            if start and end and end < start:
                raise InvalidInput("valid_until must not be before valid_from", field="valid_until")
            document = await knowledge.update_metadata(
                session,
                document_id,
                {
                    "tags": tag_list,
                    "product": product.strip() or None,
                    "audience": audience.strip() or None,
                    "valid_from": start,
                    "valid_until": end,
                    "custom": _custom(custom),
                },
            )
            if language and language != document.language:
                await knowledge.reindex(session, document_id, member.tenant.runtime.jobs, lang=language)
    except InvalidInput as exc:
        if exc.field == "valid_until" and "not a date" in exc.message:
            message = problems["valid_from"]
        else:
            message = problems.get(exc.field or "", explain(member.visitor, exc))
        field = exc.field if exc.field in typed else "language"
        return await _document_page(
            member, document_id, status=422, error=message, errors={field: message}, form=typed
        )
    return redirect(f"{HOME}/{document_id}", notice="document_saved")


@router.post("/knowledge/{document_id:uuid}/reindex")
async def reindex(member: AdminPage, document_id: uuid.UUID) -> Response:
    try:
        async with member.tenant.transaction() as session:
            await knowledge.reindex(session, document_id, member.tenant.runtime.jobs)
    except InvalidInput:
        _ = gettext(member.visitor)
        message = _("This document's file was not kept (it was sent before versions were). Upload it again.")
        return await _document_page(member, document_id, status=422, error=message)
    return redirect(f"{HOME}/{document_id}", notice="document_reindexing")


@router.get("/knowledge/{document_id:uuid}/delete")
async def delete_page(member: AdminPage, document_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        document = await knowledge.get_document(session, document_id)
    return render(member.visitor, "knowledge_delete.html", document=document)


@router.post("/knowledge/{document_id:uuid}/delete")
async def delete(member: AdminPage, document_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await knowledge.delete_document(session, document_id)
    return redirect(HOME, notice="document_deleted")
