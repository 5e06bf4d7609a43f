"""Channel accounts: create, change, list, delete (in the caller's company session), find one
by the id a channel routes by (a platform lookup), and open one for its channel (config
validated, secrets decrypted). Services never commit: callers own the transaction.

Every change to an account notifies every process when it commits (``LISTEN/NOTIFY``, topic
``TOPIC``): a process that keeps accounts in memory (the WhatsApp webhook's numbers and app
secrets, ``atende.channels.whatsapp.numbers``) drops its copy."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.channels import registry
from atende.channels.base import Account, Channel
from atende.channels.models import ChannelAccount
from atende.db.pubsub import publish
from atende.db.scope import get_or_404
from atende.errors import Conflict, InvalidInput, NotFound
from atende.tenancy.crypto import decrypt_secret, encrypt_secret

TOPIC = "channel_accounts"


class InvalidConfig(InvalidInput):
    """A configuration the channel's schema refuses: ``where`` names the setting at fault
    (``primary_color``, ``greeting.en``; empty for the whole), ``problem`` pydantic's kind of
    error (``string_too_long``, ``low_contrast``...), so a page can say it in words."""

    def __init__(self, message: str, *, where: str, problem: str, context: Mapping[str, Any]) -> None:
        super().__init__(message, field="config")
        self.where = where
        self.problem = problem
        self.context = dict(context)  # the error's details (``max_length``, ``ratio``...)


def validate_config(channel: Channel, config: Mapping[str, Any]) -> BaseModel:
    try:
        return channel.config_schema.model_validate(dict(config))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidConfig(
            f"config{'.' + where if where else ''}: {first.get('msg', 'invalid')} "
            f"(the {channel.kind} channel's configuration)",
            where=where,
            problem=str(first.get("type", "")),
            context=first.get("ctx") or {},
        ) from None


def _merge_secrets(
    channel: Channel, stored: Mapping[str, str], given: Mapping[str, str], secret_key: str
) -> dict[str, str]:
    """Given secrets encrypted over the stored ones; ``""`` removes one."""
    unknown = sorted(set(given) - set(channel.secret_fields))
    if unknown:
        allowed = ", ".join(channel.secret_fields) or "none"
        raise InvalidInput(
            f"secrets: {', '.join(unknown)}: not a secret of the {channel.kind} channel (it has: {allowed})",
            field="secrets",
        )
    merged = dict(stored)
    for name, value in given.items():
        if value:
            merged[name] = encrypt_secret(secret_key, value)
        else:
            merged.pop(name, None)
    return merged


def _external_id(channel: Channel, config: BaseModel, given: str) -> str:
    """The account's external_id: as given, unless its channel derives it from the
    configuration (e-mail: the mailbox's address, lower-cased), which it must then match."""
    derived = channel.account_external_id(config)
    if derived is None:
        return given
    if given.strip().lower() != derived:
        raise InvalidInput(
            f"external_id must be the account's {channel.kind} address '{derived}', not '{given}'",
            field="external_id",
        )
    return derived


async def _flush(session: AsyncSession, account: ChannelAccount) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"a {account.kind} account with external_id '{account.external_id}' already exists",
            field="external_id",
        ) from None


async def _changed(session: AsyncSession, account: ChannelAccount) -> None:
    """Tell every process, once this commits, that an account of ``account.kind`` changed."""
    await publish(session, TOPIC, "changed", channel=account.kind, account_id=str(account.id))


def _named(account: ChannelAccount) -> dict[str, Any]:
    return {"kind": account.kind, "name": account.display_name or account.external_id}


def _record_update(
    session: AsyncSession,
    account: ChannelAccount,
    display_name: str | None,
    enabled: bool | None,
    config: Mapping[str, Any] | None,
    secrets: Mapping[str, str] | None,
) -> None:
    """The audit log's lines for an update: the web chat's settings are the widget's; secrets
    renewed are named, never shown."""
    target = ("channel_account", account.id)
    if secrets:
        audit.record(
            session,
            "channel_account.secrets_renewed",
            target,
            {**_named(account), "renewed": sorted(secrets)},
        )
    fields = [
        name
        for name, given in (("name", display_name), ("enabled", enabled), ("config", config))
        if given is not None
    ]
    if fields:
        action = "settings.widget_changed" if account.kind == "webchat" else "channel_account.changed"
        audit.record(
            session, action, target, {**_named(account), "fields": fields, "enabled": account.enabled}
        )


async def create(
    session: AsyncSession,
    secret_key: str,
    *,
    kind: str,
    external_id: str,
    display_name: str = "",
    enabled: bool = True,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ChannelAccount:
    channel = registry.get(kind)
    if not channel.has_accounts:
        raise InvalidInput(f"the {kind} channel has no accounts (it routes by API key)", field="kind")
    validated = validate_config(channel, config or {})
    external_id = _external_id(channel, validated, external_id)
    account = ChannelAccount(
        id=uuid.uuid4(),
        kind=kind,
        external_id=external_id,
        display_name=display_name,
        enabled=enabled,
        config=validated.model_dump(mode="json"),
        secrets=_merge_secrets(channel, {}, secrets or {}, secret_key),
    )
    session.add(account)
    await _flush(session, account)
    await _changed(session, account)
    audit.record(session, "channel_account.connected", ("channel_account", account.id), _named(account))
    return account


async def get(session: AsyncSession, account_id: uuid.UUID) -> ChannelAccount:
    return await get_or_404(session, ChannelAccount, account_id, "channel account")


async def list_accounts(session: AsyncSession, kind: str | None = None) -> list[ChannelAccount]:
    stmt = select(ChannelAccount).order_by(ChannelAccount.kind, ChannelAccount.created_at)
    if kind is not None:
        stmt = stmt.where(ChannelAccount.kind == kind)
    return list(await session.scalars(stmt))


async def first_external_id(session: AsyncSession, company_id: uuid.UUID, kind: str) -> str | None:
    """What the company's oldest enabled account of a channel routes by (its widget key, for
    the web chat); ``None`` when it has none enabled. Names the company: the CLI and the demo
    ask from a platform session, right after creating it."""
    external_id: str | None = await session.scalar(
        select(ChannelAccount.external_id)
        .where(ChannelAccount.company_id == company_id, ChannelAccount.kind == kind, ChannelAccount.enabled)
        .order_by(ChannelAccount.created_at, ChannelAccount.id)
        .limit(1)
    )
    return external_id


async def update(
    session: AsyncSession,
    secret_key: str,
    account_id: uuid.UUID,
    *,
    display_name: str | None = None,
    enabled: bool | None = None,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ChannelAccount:
    """Change what is given; ``config`` replaces the stored one, ``secrets`` are merged."""
    account = await get_or_404(session, ChannelAccount, account_id, "channel account", for_update=True)
    channel = registry.get(account.kind)
    if display_name is not None:
        account.display_name = display_name
    if enabled is not None:
        account.enabled = enabled
    if config is not None:
        validated = validate_config(channel, config)
        derived = channel.account_external_id(validated)
        if derived is not None and derived != account.external_id:
            raise InvalidInput(
                f"config: the {channel.kind} account's external_id '{account.external_id}' cannot change "
                "(add an account for the new one)",
                field="config",
            )
        account.config = validated.model_dump(mode="json")
    if secrets is not None:
        account.secrets = _merge_secrets(channel, account.secrets or {}, secrets, secret_key)
    _record_update(session, account, display_name, enabled, config, secrets)
    await session.flush()
    await _changed(session, account)
    return account


async def delete(session: AsyncSession, account_id: uuid.UUID) -> None:
    """Delete an account; ``Conflict`` for the last one of a built-in channel (the web chat):
    a company keeps its widget key, which can be disabled (and enabled again) instead."""
    account = await get(session, account_id)
    channel = registry.find(account.kind)
    if channel is not None and channel.built_in:
        # every account of the kind locked, in one order: of two deletes at once, the second
        # sees the first's and finds this one the last
        kept = await session.scalars(
            select(ChannelAccount.id)
            .where(ChannelAccount.kind == account.kind)
            .order_by(ChannelAccount.id)
            .with_for_update()
        )
        if set(kept) <= {account.id}:
            raise Conflict(
                f"this is the company's last {account.kind} account: disable it instead "
                '(PATCH with {"enabled": false}), or create another before deleting this one'
            )
    await session.delete(account)
    await session.flush()
    await _changed(session, account)
    audit.record(session, "channel_account.removed", ("channel_account", account.id), _named(account))


async def route(session: AsyncSession, kind: str, external_id: str) -> ChannelAccount:
    """The enabled account a channel's inbound request names (a platform session: the request
    names no company yet). A disabled account is as unknown as a missing one."""
    account = await session.scalar(
        select(ChannelAccount).where(
            ChannelAccount.kind == kind, ChannelAccount.external_id == external_id, ChannelAccount.enabled
        )
    )
    if account is None:
        raise NotFound(f"no {kind} account '{external_id}'")
    return account


def open_account(channel: Channel, row: ChannelAccount, secret_key: str) -> Account:
    """The account as its channel uses it: config validated, secrets decrypted (a secret that
    cannot be decrypted, say after a change of ATENDE_SECRET_KEY, raises ``ValueError``)."""
    return Account(
        id=row.id,
        company_id=row.company_id,
        kind=row.kind,
        external_id=row.external_id,
        display_name=row.display_name,
        enabled=row.enabled,
        config=channel.config_schema.model_validate(row.config or {}),
        secrets={name: decrypt_secret(secret_key, token) for name, token in (row.secrets or {}).items()},
    )
