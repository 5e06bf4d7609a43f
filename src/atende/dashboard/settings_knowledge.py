"""The Knowledge rules page (owners and admins): which documents may answer whom. It shows the
rules that always hold (no internal document for a customer, none outside its dates), the
windowed tags (a promotion only within its own dates) and the company's context rules ("on
channel whatsapp, only documents of product X"; "pages under /pro/ → product pro"). Saving
validates as ``PUT /v1/company/knowledge-rules`` does and calls the same service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.knowledge import rules
from atende.knowledge.schemas import KnowledgeRulesIn
from atende.knowledge.service import clean_tags
from atende.tenancy import service as tenancy

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PATH = "/app/settings/knowledge-rules"
ROW_FIELDS = ("when", "equals", "field", "value")
BLANK = {"when": "", "equals": "", "field": "", "value": "", "or_unset": False, "remove": False}
# what a rule's fields may say, offered in the page's lists (any other key is typed)
CONTEXT_KEYS = (
    ("channel", N_("Channel (webchat, whatsapp, email, api)")),
    ("page", N_("Page the widget is on (the start of its path)")),
    ("product", N_("Product the widget's page names")),
)
DOCUMENT_FIELDS = (
    ("product", N_("Product")),
    ("tag", N_("Tag")),
    ("audience", N_("Audience")),
    ("language", N_("Language (pt, en, es)")),
)
PROBLEMS = {
    "key": N_("Use lower-case letters, digits and _, such as channel, page, product or region."),
    "page": N_("For a page, give the start of its path, such as /pro/, and the value documents must have."),
    "language": N_("A language is pt, en or es."),
    "tags": N_("Tags have at most 60 characters each, and at most 30 of them."),
    "rules": N_("At most 30 rules."),
    "other": N_("Check this rule: a value has at most 200 characters, a page at most 500."),
}


def _problem(error: Any) -> str:
    message = str(error.get("msg", ""))
    where = [str(p) for p in error["loc"]]
    if where[-1] in ("when", "field") and "lower-case" in message:
        return PROBLEMS["key"]
    if "path" in message or "page rule" in message:
        return PROBLEMS["page"]
    if "language" in message:
        return PROBLEMS["language"]
    return PROBLEMS["other"]


async def _page(
    member: Member,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    if form is None:
        async with member.tenant.transaction() as session:
            company = await tenancy.get_company(session, str(member.tenant.principal.company_id))
            stored = rules.company_rules(company)
        form = {
            "windowed_tags": ", ".join(stored.windowed_tags),
            "rules": [{**BLANK, **rule.model_dump()} for rule in stored.rules] + [dict(BLANK)],
        }
    return render(
        member.visitor,
        "settings_knowledge.html",
        status=status,
        form=form,
        errors=errors or {},
        context_keys=CONTEXT_KEYS,
        document_fields=DOCUMENT_FIELDS,
        internal=rules.INTERNAL,
    )


@router.get("/settings/knowledge-rules")
async def rules_page(member: AdminPage) -> Response:
    return await _page(member)


def _posted_rows(form: Any) -> list[dict[str, Any]]:
    """The rule rows as sent (``rule-N-when``...), in order."""
    rows = []
    for i in range(rules.MAX_RULES + 2):
        if f"rule-{i}-when" not in form:
            break
        row: dict[str, Any] = {name: str(form.get(f"rule-{i}-{name}", "")).strip() for name in ROW_FIELDS}
        row["or_unset"] = form.get(f"rule-{i}-or_unset") == "on"
        row["remove"] = form.get(f"rule-{i}-remove") == "on"
        rows.append(row)
    return rows


@router.post("/settings/knowledge-rules")
async def save_rules(member: AdminPage, request: Request) -> Response:
    _ = gettext(member.visitor)
    posted = await request.form()
    rows = _posted_rows(posted)
    kept = [(i, row) for i, row in enumerate(rows) if not row["remove"] and any(row[n] for n in ROW_FIELDS)]
    windowed = str(posted.get("windowed_tags", ""))[:5000]
    body = {
        "windowed_tags": list(clean_tags(windowed.split(","))),
        "rules": [{k: v for k, v in row.items() if k != "remove"} for _i, row in kept],
    }
    shown = {
        "windowed_tags": windowed,
        "rules": [*rows, dict(BLANK)] if len(rows) <= rules.MAX_RULES else rows,
    }
    try:
        checked = KnowledgeRulesIn.model_validate(body)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            where = [str(part) for part in error["loc"]]
            if where[0] == "rules" and len(where) > 1 and where[1].isdigit():
                errors.setdefault(f"rule-{kept[int(where[1])][0]}", _(_problem(error)))
            elif where[0] == "rules":
                errors["rules"] = _(PROBLEMS["rules"])
            else:
                errors["windowed_tags"] = _(PROBLEMS["tags"])
        return await _page(member, status=422, form=shown, errors=errors)
    async with member.tenant.transaction() as session:
        await rules.replace_rules(session, member.tenant.principal.company_id, checked.section())
    return redirect(PATH, notice="knowledge_rules_saved")
