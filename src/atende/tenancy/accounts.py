"""People's accounts: passwords, reset links, invitations, and a company's members (roles,
deactivation). Services never commit: callers own the transaction.

Links e-mailed to people (password resets, invitations) carry a random token; only its keyed
hash is stored, each works once and until it expires. Role rules, whoever calls: nobody
grants a role above their own or changes a member whose role is above their own (an admin
cannot demote an owner), and a company always keeps an active owner.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.db.pubsub import publish
from atende.db.scope import company_of
from atende.errors import AtendeError, Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from atende.tenancy.crypto import hash_password, hash_token, new_token, verify_password
from atende.tenancy.models import ApiKey, Company, Invitation, Membership, PasswordReset, Role, User
from atende.tenancy.service import Principal
from atende.tenancy.sessions import active_companies, end_sessions

EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_EMAIL = 320
MAX_NAME = 200
# verified when the e-mail matches nobody, so a wrong address costs the time a wrong password does
_NOBODY = hash_password(new_token(16))


class WrongCredentials(Unauthorized):
    """No account with this e-mail and password."""


class AccessDeactivated(Forbidden):
    """The password is right, but the person is active in no company (and no superadmin)."""


class LinkNotValid(AtendeError):
    """An e-mailed link that is unknown, used already or expired."""

    status_code = 410
    code = "link_not_valid"


class LastOwner(Conflict):
    """The change would leave the company without an active owner."""


class AboveYourRole(Forbidden):
    """The actor may not grant this role, or change a member whose role is above theirs."""


class NotYourself(Conflict):
    """A member cannot deactivate themself."""


def normalize_email(email: str) -> str:
    """An e-mail as stored: trimmed, lower case; ``InvalidInput`` if it is not one."""
    email = email.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL.fullmatch(email):
        raise InvalidInput(f"'{email[:MAX_EMAIL]}' is not an e-mail address", field="email")
    return email


def check_password(password: str) -> str:
    """A password people may choose: 8 to 256 characters."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD} characters", field="password")
    return password


async def authenticate_password(session: AsyncSession, *, email: str, password: str) -> User:
    """The person with this e-mail and password; ``WrongCredentials`` otherwise (the same,
    in the same time, whether the e-mail or the password was wrong)."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        verify_password(_NOBODY, password)
        raise WrongCredentials("wrong e-mail or password")
    if not verify_password(user.password_hash, password):
        raise WrongCredentials("wrong e-mail or password")
    return user


async def _record_for_person(session: AsyncSession, action: str, user_id: uuid.UUID) -> None:
    """What happened to a person's account, in the audit log of each company they are an
    active member of (an account belongs to no one company)."""
    for company in await active_companies(session, user_id):
        audit.record(session, action, ("user", user_id), company_id=company.id, user_id=user_id)


async def record_failed_sign_in(session: AsyncSession, *, email: str) -> None:
    """A wrong password for ``email``, in the audit log of each company the person is an
    active member of (an address that matches nobody is nobody's to see: nothing is kept, nor
    what was typed)."""
    user_id = await session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if user_id is None:
        return
    await _record_for_person(session, "auth.sign_in_failed", user_id)


async def change_password(session: AsyncSession, *, user_id: uuid.UUID, current: str, new: str) -> None:
    """Replace a password, given the current one (``WrongCredentials`` if it is wrong)."""
    user = await session.get_one(User, user_id)
    if not verify_password(user.password_hash, current):
        raise WrongCredentials("the current password is wrong", field="current_password")
    user.password_hash = hash_password(check_password(new))
    await _record_for_person(session, "auth.password_changed", user_id)


async def set_language(session: AsyncSession, *, user_id: uuid.UUID, language: str | None) -> None:
    user = await session.get_one(User, user_id)
    user.language = language


async def request_password_reset(
    session: AsyncSession, *, secret_key: str, email: str, now: datetime, valid_for: timedelta
) -> tuple[User, str] | None:
    """A reset link's token for the person with this e-mail (``None``: nobody has it, which
    the caller must not reveal). An earlier unused link of theirs stops working."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        return None
    await session.execute(
        delete(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
    )
    token = new_token(32)
    session.add(
        PasswordReset(user_id=user.id, token_hash=hash_token(secret_key, token), expires_at=now + valid_for)
    )
    await session.flush()
    return user, token


async def _reset_link(
    session: AsyncSession, secret_key: str, token: str, now: datetime, *, lock: bool = False
) -> PasswordReset:
    stmt = select(PasswordReset).where(PasswordReset.token_hash == hash_token(secret_key, token))
    if lock:
        stmt = stmt.with_for_update()
    link = await session.scalar(stmt)
    if link is None or link.used_at is not None or now >= link.expires_at:
        raise LinkNotValid("this link is not valid any more: it was used already or it expired")
    return link


async def reset_link_user(session: AsyncSession, *, secret_key: str, token: str, now: datetime) -> User:
    """The person a reset link is for; ``LinkNotValid`` if it is unknown, used or expired."""
    link = await _reset_link(session, secret_key, token, now)
    return await session.get_one(User, link.user_id)


async def reset_password(
    session: AsyncSession, *, secret_key: str, token: str, password: str, now: datetime
) -> User:
    """Set a new password through a reset link, which then stops working; the person's
    sessions end (whoever had their old password is signed out)."""
    check_password(password)
    link = await _reset_link(session, secret_key, token, now, lock=True)
    link.used_at = now
    user = await session.get_one(User, link.user_id)
    user.password_hash = hash_password(password)
    await end_sessions(session, user_id=user.id)
    await _record_for_person(session, "auth.password_reset", user.id)
    return user


# --- invitations ---------------------------------------------------------------------------


def _may_grant(actor: Principal, role: Role) -> None:
    if not actor.role.allows(role):
        raise AboveYourRole(f"a {actor.role.value} cannot give the {role.value} role", field="role")


async def invite(
    session: AsyncSession,
    *,
    secret_key: str,
    actor: Principal,
    email: str,
    role: Role,
    now: datetime,
    valid_for: timedelta,
) -> tuple[Invitation, str]:
    """Invite a person to the session's company with a role; returns the invitation and its
    link's token. An earlier pending invitation of the same address is replaced."""
    email = normalize_email(email)
    _may_grant(actor, role)
    active = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.deactivated_at.is_(None))
    )
    if active is not None:
        raise Conflict(f"{email} is already a member of this company", field="email")
    await session.execute(
        delete(Invitation).where(Invitation.email == email, Invitation.accepted_at.is_(None))
    )
    token = new_token(32)
    invitation = Invitation(
        email=email,
        role=role.value,
        token_hash=hash_token(secret_key, token),
        invited_by=actor.user_id,
        expires_at=now + valid_for,
    )
    session.add(invitation)
    await session.flush()
    audit.record(
        session, "invitation.sent", ("invitation", invitation.id), {"email": email, "role": role.value}
    )
    return invitation, token


async def invite_owner(
    session: AsyncSession,
    *,
    secret_key: str,
    company_id: uuid.UUID,
    email: str,
    now: datetime,
    valid_for: timedelta,
) -> tuple[Invitation, str]:
    """The first owner of a new company, invited by the platform (a company session)."""
    platform = Principal(company_id=company_id, role=Role.owner)
    return await invite(
        session,
        secret_key=secret_key,
        actor=platform,
        email=email,
        role=Role.owner,
        now=now,
        valid_for=valid_for,
    )


async def list_invitations(session: AsyncSession, *, now: datetime) -> list[Invitation]:
    """The company's invitations not accepted yet and not expired, newest first."""
    return list(
        await session.scalars(
            select(Invitation)
            .where(Invitation.accepted_at.is_(None), Invitation.expires_at > now)
            .order_by(Invitation.created_at.desc())
        )
    )


async def cancel_invitation(session: AsyncSession, *, actor: Principal, invitation_id: uuid.UUID) -> str:
    """Withdraw a pending invitation of the session's company; returns its e-mail."""
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None or invitation.accepted_at is not None:
        raise NotFound(f"no invitation {invitation_id}")
    _may_grant(actor, Role(invitation.role))
    await session.delete(invitation)
    audit.record(session, "invitation.cancelled", ("invitation", invitation.id), {"email": invitation.email})
    return invitation.email


@dataclass(frozen=True)
class InvitationView:
    """What an invitation link shows before it is accepted."""

    company_id: uuid.UUID
    company_name: str
    email: str
    role: Role
    has_account: bool


async def _invitation(
    session: AsyncSession, secret_key: str, token: str, now: datetime, *, lock: bool = False
) -> Invitation:
    stmt = select(Invitation).where(Invitation.token_hash == hash_token(secret_key, token))
    if lock:
        stmt = stmt.with_for_update()
    invitation = await session.scalar(stmt)
    if invitation is None or invitation.accepted_at is not None or now >= invitation.expires_at:
        raise LinkNotValid("this invitation is not valid any more: it was used already or it expired")
    return invitation


async def invitation_for(
    session: AsyncSession, *, secret_key: str, token: str, now: datetime
) -> InvitationView:
    """The invitation of a link (a platform session: the link names no company)."""
    invitation = await _invitation(session, secret_key, token, now)
    company = await session.get_one(Company, invitation.company_id)
    user = await session.scalar(select(User.id).where(User.email == invitation.email))
    return InvitationView(
        company_id=company.id,
        company_name=company.name,
        email=invitation.email,
        role=Role(invitation.role),
        has_account=user is not None,
    )


async def accept_invitation(
    session: AsyncSession, *, secret_key: str, token: str, now: datetime, name: str, password: str
) -> tuple[User, uuid.UUID]:
    """Join the company of an invitation link (a platform session); returns the person and the
    company. A new person chooses a name and a password; someone who has an account already
    proves it is theirs with its password. A deactivated member comes back with the role."""
    invitation = await _invitation(session, secret_key, token, now, lock=True)
    user = await session.scalar(select(User).where(User.email == invitation.email))
    if user is None:
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidInput(f"a name of 1 to {MAX_NAME} characters is needed", field="name")
        user = User(email=invitation.email, name=name, password_hash=hash_password(check_password(password)))
        session.add(user)
        await session.flush()
    elif not verify_password(user.password_hash, password):
        raise WrongCredentials("the password of your account is wrong", field="password")
    member = await session.scalar(
        select(Membership).where(
            Membership.company_id == invitation.company_id, Membership.user_id == user.id
        )
    )
    if member is None:
        session.add(Membership(company_id=invitation.company_id, user_id=user.id, role=invitation.role))
    else:
        member.role, member.deactivated_at = invitation.role, None
    invitation.accepted_at = now
    await session.flush()
    audit.record(
        session,
        "invitation.accepted",
        ("user", user.id),
        {"role": invitation.role},
        company_id=invitation.company_id,
        user_id=user.id,
    )
    return user, invitation.company_id


# --- members -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool


async def list_members(session: AsyncSession) -> list[Member]:
    """The company's members (active first, then by name or e-mail)."""
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .order_by(
            Membership.deactivated_at.is_not(None),
            func.lower(func.coalesce(func.nullif(User.name, ""), User.email)),
        )
    )
    return [
        Member(user_id=u.id, email=u.email, name=u.name, role=Role(m.role), active=m.deactivated_at is None)
        for m, u in rows
    ]


async def _member(session: AsyncSession, user_id: uuid.UUID) -> Membership:
    # locked: two admins changing owners at once must not both leave one owner
    member = await session.scalar(select(Membership).where(Membership.user_id == user_id).with_for_update())
    if member is None:
        raise NotFound(f"no member {user_id}")
    return member


async def _keeps_an_owner(session: AsyncSession, member: Membership) -> None:
    """Refuse to take ``member``'s active ownership away if they are the last owner."""
    if member.role != Role.owner.value or member.deactivated_at is not None:
        return
    owners = list(
        await session.scalars(
            select(Membership.id)
            .where(Membership.role == Role.owner.value, Membership.deactivated_at.is_(None))
            .with_for_update()
        )
    )
    if len(owners) <= 1:
        raise LastOwner("the company's last owner cannot be changed or deactivated; make another owner first")


async def change_role(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID, role: Role) -> Member:
    """Give a member of the session's company another role."""
    member = await _member(session, user_id)
    _may_grant(actor, Role(member.role))
    _may_grant(actor, role)
    if role != Role.owner:
        await _keeps_an_owner(session, member)
    audit.record(session, "member.role_changed", ("user", user_id), {"from": member.role, "to": role.value})
    member.role = role.value
    return await _as_member(session, member)


async def deactivate_member(
    session: AsyncSession, *, actor: Principal, user_id: uuid.UUID, now: datetime
) -> Member:
    """A member can no longer sign in to the session's company: their sessions in it end,
    their personal API keys of it are revoked, and they are offline for handoffs."""
    if user_id == actor.user_id:
        raise NotYourself("you cannot deactivate yourself; ask another admin or owner")
    member = await _member(session, user_id)
    _may_grant(actor, Role(member.role))
    if member.deactivated_at is None:
        await _keeps_an_owner(session, member)
        audit.record(session, "member.deactivated", ("user", user_id), {"role": member.role})
        member.deactivated_at = now
        member.availability, member.availability_changed_at = "offline", now
    await end_sessions(session, user_id=user_id, company_id=company_of(session))
    revoked = await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(ApiKey.prefix)
    )
    for prefix in revoked.scalars():
        await publish(session, "api_keys", "revoked", prefix=prefix)
    return await _as_member(session, member)


async def reactivate_member(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID) -> Member:
    """A deactivated member may sign in to the session's company again, with their role."""
    member = await _member(session, user_id)
    _may_grant(actor, Role(member.role))
    if member.deactivated_at is not None:
        audit.record(session, "member.reactivated", ("user", user_id), {"role": member.role})
    member.deactivated_at = None
    return await _as_member(session, member)


async def _as_member(session: AsyncSession, member: Membership) -> Member:
    await session.flush()
    user = await session.get_one(User, member.user_id)
    return Member(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=Role(member.role),
        active=member.deactivated_at is None,
    )


# --- the platform --------------------------------------------------------------------------


async def make_superadmin(
    session: AsyncSession, *, email: str, password: str, name: str = ""
) -> tuple[User, bool]:
    """A platform superadmin (manages companies): a new person with this password, or an
    existing one made superadmin (their password unchanged). Returns (person, created)."""
    email = normalize_email(email)
    user = await session.scalar(select(User).where(User.email == email))
    if user is not None:
        user.is_superadmin = True
        return user, False
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(check_password(password)),
        is_superadmin=True,
    )
    session.add(user)
    await session.flush()
    return user, True
