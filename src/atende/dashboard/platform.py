"""The platform's pages, for superadmins (``atende users create --superadmin``): the
companies, and creating one with its first owner (invited by e-mail)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Response

from atende.audit import service as audit
from atende.dashboard import emails
from atende.dashboard.auth import SuperadminPage, Visitor
from atende.dashboard.web import PageRoute, explain, now, redirect, render
from atende.errors import AtendeError
from atende.tenancy import accounts
from atende.tenancy import service as tenancy
from atende.tenancy.deps import client_ip
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# the languages a company may default to, by code, in their own language
COMPANY_LANGUAGES = {"pt": "Português", "en": "English", "es": "Español"}


async def _page(
    current: Visitor,
    *,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    async with current.runtime.db.transaction() as session:
        companies = await tenancy.list_companies(session)
    return render(
        current,
        "companies.html",
        status=status,
        company_list=companies,
        company_languages=COMPANY_LANGUAGES,
        error=error,
        errors=errors or {},
        values=values or {},
    )


@router.get("/platform/companies")
async def companies_page(current: SuperadminPage) -> Response:
    return await _page(current)


@router.post("/platform/companies")
async def create_company(
    current: SuperadminPage,
    name: Annotated[str, Form(max_length=200)] = "",
    default_language: Annotated[str, Form(max_length=5)] = "pt",
    owner_email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    runtime = current.runtime
    values = {"name": name, "default_language": default_language, "owner_email": owner_email}
    try:
        # checked first: the company and its owner's invitation are two transactions
        accounts.normalize_email(owner_email)
        superadmin = audit.Actor(
            user_id=current.signed_in.user_id if current.signed_in else None, ip=client_ip(current.request)
        )
        async with runtime.db.transaction() as session:
            audit.bind(session, superadmin)
            company = await tenancy.create_company(session, name=name, default_language=default_language)
            company_id, company_name = company.id, company.name
        async with runtime.db.transaction(company_id) as session:
            audit.bind(session, superadmin)
            invitation, token = await accounts.invite_owner(
                session,
                secret_key=runtime.secret_key,
                company_id=company_id,
                email=owner_email,
                now=now(current),
                valid_for=timedelta(days=runtime.settings.invitation_days),
            )
            await emails.send_invitation(
                session,
                runtime,
                email=invitation.email,
                token=token,
                company_name=company_name,
                role=Role.owner,
                company_language=default_language,
            )
    except AtendeError as exc:
        message = explain(current, exc)
        field = "owner_email" if exc.field == "email" else ("name" if "name" in exc.message else None)
        return await _page(
            current,
            status=exc.status_code,
            error=None if field else message,
            errors={field: message} if field else {},
            values=values,
        )
    return redirect("/app/platform/companies", notice="company_created")
