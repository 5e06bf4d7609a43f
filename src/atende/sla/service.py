"""SLA policies (create, read, update, delete), a conversation's priority and SLA state, and
the periodic check that computes the clocks' due times and raises warnings and breaches.

The triggers of migration 0035 start and stop the clocks (``atende.sla.models``); this
module does what needs business time: ``check`` (the SLA job, one company per transaction)
chooses each new or changed clock's policy, computes its due and warning instants in the
conversation team's hours (else the company's) with a ``DueClock``, records every stopped
clock as met or breached, and raises each warning and breach once, when its moment has come:
a live update of the dashboard, the ``sla.warning`` / ``sla.breached`` webhooks, an e-mail to
the team when the policy asks, and the policy's escalation on a breach.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import labels
from atende.conversations import service as conversations
from atende.conversations.models import Conversation, ConversationLabel
from atende.conversations.schemas import SlaDueOut
from atende.db.pubsub import publish
from atende.db.scope import company_of, get_or_404
from atende.errors import InvalidInput, NotFound
from atende.hours import Schedule
from atende.mail import sender as mail
from atende.observability import metrics
from atende.runtime import Runtime
from atende.sla.clock import DueClock
from atende.sla.models import SlaClock, SlaPolicy
from atende.sla.policy import PRIORITIES, Escalation, Facts, Policy, Target, Times, choose, next_alarm, times
from atende.sla.schemas import ClockPublic, ConversationSla, PolicyIn, PolicyPublic
from atende.teams import service as teams
from atende.teams.models import Team
from atende.tenancy.models import Company
from atende.webhooks import service as webhooks

log = structlog.get_logger(__name__)

WARNING, BREACHED = "sla.warning", "sla.breached"
LIVE_KIND = "sla"  # on the company's queue topic and the conversation's


# policies


def rule(row: SlaPolicy) -> Policy:
    """A stored policy as the pure ``Policy`` the clocks are computed with."""
    targets = {
        Target.first_response: row.first_response_seconds,
        Target.next_response: row.next_response_seconds,
        Target.resolution: row.resolution_seconds,
    }
    return Policy(
        id=row.id,
        name=row.name,
        position=row.position,
        targets={t: s for t, s in targets.items() if s},
        priorities=frozenset(row.priorities or ()),
        channels=frozenset(row.channels or ()),
        team_ids=frozenset(row.team_ids or ()),
        label_ids=frozenset(row.label_ids or ()),
        warning_percent=row.warning_percent,
        escalation=Escalation(row.escalation),
        escalation_team_id=row.escalation_team_id,
        email_team=row.email_team,
    )


def public(row: SlaPolicy) -> PolicyPublic:
    return PolicyPublic(
        id=row.id,
        name=row.name,
        position=row.position,
        priorities=list(row.priorities or []),
        channels=list(row.channels or []),
        teams=list(row.team_ids or []),
        labels=list(row.label_ids or []),
        first_response_seconds=row.first_response_seconds,
        next_response_seconds=row.next_response_seconds,
        resolution_seconds=row.resolution_seconds,
        warning_percent=row.warning_percent,
        escalation=Escalation(row.escalation),
        escalation_team=row.escalation_team_id,
        email_team=row.email_team,
    )


async def list_policies(session: AsyncSession) -> list[SlaPolicy]:
    """The company's policies in the order they are tried."""
    return list(await session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.created_at)))


async def get_policy(session: AsyncSession, policy_id: uuid.UUID) -> SlaPolicy:
    return await get_or_404(session, SlaPolicy, policy_id, "SLA policy")


async def _team_ids(session: AsyncSession, refs: Iterable[str], where: str) -> list[uuid.UUID]:
    return [(await teams.get_team(session, ref, field=where)).id for ref in dict.fromkeys(refs)]


async def _label_ids(session: AsyncSession, refs: Iterable[str]) -> list[uuid.UUID]:
    try:
        return [(await labels.get_label(session, ref)).id for ref in dict.fromkeys(refs)]
    except NotFound as exc:
        raise InvalidInput(f"labels: {exc.message}", field="labels") from None


async def _fill(session: AsyncSession, row: SlaPolicy, data: PolicyIn) -> None:
    unknown = [p for p in data.priorities if p not in PRIORITIES]
    if unknown:
        raise InvalidInput(
            f"priorities: '{unknown[0]}' is not a priority (one of {', '.join(PRIORITIES)})",
            field="priorities",
        )
    if not (data.first_response or data.next_response or data.resolution):
        raise InvalidInput(
            "first_response: a policy needs at least one target: first_response, next_response or resolution",
            field="first_response",
        )
    if data.escalation != Escalation.none and not data.escalation_team:
        raise InvalidInput(
            f"escalation_team: escalation '{data.escalation.value}' needs the team to "
            f"{'reassign to' if data.escalation == Escalation.reassign else 'notify'}",
            field="escalation_team",
        )
    clash = await session.scalar(
        select(SlaPolicy.id).where(
            func.lower(SlaPolicy.name) == data.name.strip().lower(), SlaPolicy.id != row.id
        )
    )
    if clash is not None:
        raise _name_taken(data.name)
    row.name = data.name.strip()
    row.priorities = list(dict.fromkeys(data.priorities))
    row.channels = list(dict.fromkeys(c.strip().lower() for c in data.channels if c.strip()))
    row.team_ids = await _team_ids(session, data.teams, "teams")
    row.label_ids = await _label_ids(session, data.labels)
    row.first_response_seconds = data.first_response
    row.next_response_seconds = data.next_response
    row.resolution_seconds = data.resolution
    row.warning_percent = data.warning_percent
    row.escalation = data.escalation.value
    row.escalation_team_id = (
        (await teams.get_team(session, data.escalation_team, field="escalation_team")).id
        if data.escalation_team and data.escalation != Escalation.none
        else None
    )
    row.email_team = data.email_team
    if data.position is not None:
        row.position = data.position
    elif row.position is None:
        last = await session.scalar(select(func.max(SlaPolicy.position)))
        row.position = 0 if last is None else last + 1


async def recompute_all(session: AsyncSession) -> None:
    """The policies changed: every running clock of the company is computed again (the job)."""
    await session.execute(
        update(SlaClock)
        .where(SlaClock.stopped_at.is_(None), SlaClock.stale.is_(False))
        .values(stale=True)
        .execution_options(synchronize_session=False)
    )


def _name_taken(name: str) -> InvalidInput:
    return InvalidInput(f"name: there is a policy named '{name.strip()}' already", field="name")


async def _store(session: AsyncSession, row: SlaPolicy, data: PolicyIn) -> None:
    """Flush the policy; a name taken meanwhile (another create or rename of the same name,
    in any case, committed first: the unique index of migration 0041) is refused as
    ``_fill``'s check refuses it, never a 500."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        if "uq_sla_policies_company" not in str(exc.orig):
            raise
        raise _name_taken(data.name) from None


async def create_policy(session: AsyncSession, data: PolicyIn) -> SlaPolicy:
    row = SlaPolicy(id=uuid.uuid4(), company_id=company_of(session))
    await _fill(session, row, data)
    await _store(session, row, data)
    await recompute_all(session)
    return row


async def update_policy(session: AsyncSession, policy_id: uuid.UUID, data: PolicyIn) -> SlaPolicy:
    row = await get_or_404(session, SlaPolicy, policy_id, "SLA policy", for_update=True)
    await _fill(session, row, data)
    await _store(session, row, data)
    await recompute_all(session)
    return row


async def delete_policy(session: AsyncSession, policy_id: uuid.UUID) -> None:
    row = await get_policy(session, policy_id)
    await session.delete(row)
    await session.flush()
    await recompute_all(session)


# a conversation's priority and SLA state


async def set_priority(session: AsyncSession, conversation_id: uuid.UUID, priority: str) -> Conversation:
    """Set the conversation's priority (its clocks are computed again: the policy may change)."""
    if priority not in PRIORITIES:
        raise InvalidInput(
            f"priority: '{priority}' is not a priority (one of {', '.join(PRIORITIES)})", field="priority"
        )
    conversation = await conversations.get_conversation(session, conversation_id, for_update=True)
    if conversation.priority != priority:
        conversation.priority = priority
        await session.flush()
        await publish(
            session,
            conversations.queue_topic(conversation.company_id),
            "labels",
            conversation_id=str(conversation_id),
        )
    return conversation


class _Clocks:
    """One ``DueClock`` per schedule, built when first asked for."""

    def __init__(self, schedules: dict[uuid.UUID | None, Schedule]) -> None:
        self.schedules = schedules
        self._clocks: dict[uuid.UUID | None, DueClock] = {}

    def of(self, team_id: uuid.UUID | None) -> DueClock:
        key = team_id if team_id in self.schedules else None
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = DueClock(self.schedules[key])
        return clock


@dataclass
class _Context:
    policies: list[Policy]
    clocks: _Clocks
    names: dict[uuid.UUID, str] = field(default_factory=dict)
    _chosen: dict[Facts, Policy | None] = field(default_factory=dict)

    def policy_for(self, facts: Facts) -> Policy | None:
        """``choose``, once per distinct set of facts (most conversations share theirs)."""
        if facts not in self._chosen:
            self._chosen[facts] = choose(self.policies, facts)
        return self._chosen[facts]

    def policy(self, policy_id: uuid.UUID | None) -> Policy | None:
        return next((p for p in self.policies if p.id == policy_id), None)


async def _context(
    session: AsyncSession, company_id: uuid.UUID, team_ids: Iterable[uuid.UUID | None]
) -> _Context:
    company = await session.get(Company, company_id)
    assert company is not None
    rows = await list_policies(session)
    schedules = await teams.team_schedules(session, company, team_ids)
    return _Context([rule(r) for r in rows], _Clocks(schedules), {r.id: r.name for r in rows})


def _times(
    context: _Context, policy: Policy | None, target: str, team_id: uuid.UUID | None, started_at: datetime
) -> Times:
    seconds = policy.targets.get(Target(target)) if policy is not None else None
    if policy is None or not seconds:
        return Times(None, None)
    return times(context.clocks.of(team_id), started_at, seconds, policy.warning_percent)


def _status(clock: SlaClock, due_at: datetime | None, now: datetime, warn_at: datetime | None) -> str:
    if clock.stopped_at is not None:
        return "met" if due_at is None or clock.stopped_at <= due_at else "breached"
    if due_at is not None and now >= due_at:
        return "breached"
    if warn_at is not None and now >= warn_at:
        return "warning"
    return "running"


async def conversation_sla(
    session: AsyncSession, conversation_id: uuid.UUID, now: datetime
) -> ConversationSla:
    """The conversation's policy and clocks (running ones, and those stopped since the job last
    looked), computed here for a clock the job has not yet computed."""
    conversation = await conversations.get_conversation(session, conversation_id)
    rows = list(
        await session.scalars(
            select(SlaClock)
            .where(SlaClock.conversation_id == conversation_id)
            .order_by(SlaClock.started_at, SlaClock.target)
        )
    )
    label_ids = frozenset(
        await session.scalars(
            select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == conversation_id)
        )
    )
    context = await _context(session, conversation.company_id, [conversation.team_id])
    policy = context.policy_for(
        Facts(conversation.priority, conversation.channel, conversation.team_id, label_ids)
    )
    clocks = []
    for row in rows:
        if row.stale:
            t = _times(context, policy, row.target, conversation.team_id, row.started_at)
            due_at, warn_at = t.due_at, t.warn_at
        else:
            due_at, warn_at = row.due_at, row.warn_at
        clocks.append(
            ClockPublic(
                target=Target(row.target),
                started_at=row.started_at,
                due_at=due_at,
                warn_at=warn_at,
                stopped_at=row.stopped_at,
                status=_status(row, due_at, now, warn_at),
                seconds_to_breach=(due_at - now).total_seconds()
                if due_at is not None and row.stopped_at is None
                else None,
            )
        )
    running = [c.due_at for c in clocks if c.due_at is not None and c.stopped_at is None]
    return ConversationSla(
        conversation_id=conversation_id,
        priority=conversation.priority,
        policy_id=policy.id if policy else None,
        policy=policy.name if policy else None,
        clocks=clocks,
        next_due_at=min(running) if running else None,
    )


async def next_due(session: AsyncSession, conversation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """The earliest due time of each conversation's running clocks, as the job computed it
    (the conversation list's "time to breach")."""
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(SlaClock.conversation_id, func.min(SlaClock.due_at))
        .where(
            SlaClock.conversation_id.in_(conversation_ids),
            SlaClock.stopped_at.is_(None),
            SlaClock.due_at.is_not(None),
        )
        .group_by(SlaClock.conversation_id)
    )
    return {cid: due for cid, due in rows.tuples() if due is not None}


async def due_times(
    session: AsyncSession, conversation_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[SlaDueOut]]:
    """Each conversation's running targets, the first to breach first: for one conversation,
    as ``conversation_sla`` shows them (computed here when the job has not yet); for a list,
    as the job computed them, as the inbox shows them (``next_due``)."""
    if len(conversation_ids) == 1:
        [only] = conversation_ids
        found = await conversation_sla(session, only, now)
        running = [
            SlaDueOut(
                target=c.target.value,
                due_at=c.due_at,
                seconds_to_breach=c.seconds_to_breach,
                status=c.status,
            )
            for c in found.clocks
            if c.stopped_at is None and c.due_at is not None  # no policy sets this target: no due time
        ]
        return {only: sorted(running, key=_first_due)}
    rows = await session.scalars(
        select(SlaClock).where(
            SlaClock.conversation_id.in_(conversation_ids),
            SlaClock.stopped_at.is_(None),
            SlaClock.due_at.is_not(None),  # a target no policy sets runs with no due time: not listed
        )
    )
    due: dict[uuid.UUID, list[SlaDueOut]] = {}
    for row in rows:
        due.setdefault(row.conversation_id, []).append(
            SlaDueOut(
                target=row.target,
                due_at=row.due_at,
                seconds_to_breach=(row.due_at - now).total_seconds() if row.due_at is not None else None,
                status=_status(row, row.due_at, now, row.warn_at),
            )
        )
    return {cid: sorted(targets, key=_first_due) for cid, targets in due.items()}


def _first_due(target: SlaDueOut) -> tuple[bool, datetime]:
    return (target.due_at is None, target.due_at or datetime.max.replace(tzinfo=UTC))


# the job

_PENDING = text(
    """
    SELECT k.id, k.conversation_id, k.target, k.started_at, k.stopped_at, k.policy_id, k.due_at,
           k.warn_at, k.warned_at, k.breached_at, k.stale,
           c.priority, c.channel, c.team_id, c.assignee_id,
           ARRAY(SELECT l.label_id FROM conversation_labels l WHERE l.conversation_id = c.id) AS labels
      FROM sla_clocks k
      JOIN conversations c ON c.id = k.conversation_id AND c.company_id = k.company_id
     WHERE k.company_id = :company AND (k.stale OR k.alarm_at <= :now)
     ORDER BY k.stale, k.started_at
     LIMIT :limit
       FOR UPDATE OF k SKIP LOCKED
    """
)

# the job's writes take their rows as one JSON document (one parameter, encoded in C: tens of
# thousands of rows as separate array parameters cost more to encode than to write)
_WRITE = text(
    """
    UPDATE sla_clocks k
       SET policy_id = u.policy_id, due_at = u.due_at, warn_at = u.warn_at, warned_at = u.warned_at,
           breached_at = u.breached_at, alarm_at = u.alarm_at, stale = false
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS u(id uuid, policy_id uuid, due_at timestamptz, warn_at timestamptz, warned_at timestamptz,
                breached_at timestamptz, alarm_at timestamptz)
     WHERE k.id = u.id AND k.company_id = :company
    """
)

_RECORD = text(
    """
    INSERT INTO sla_records AS r
           (id, company_id, conversation_id, policy_id, target, started_at, due_at, stopped_at, breached,
            channel, team_id, assignee_id)
    SELECT gen_random_uuid(), :company, u.conversation_id, u.policy_id, u.target, u.started_at, u.due_at,
           u.stopped_at, u.breached, u.channel, u.team_id, u.assignee_id
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS u(conversation_id uuid, policy_id uuid, target text, started_at timestamptz, due_at timestamptz,
                stopped_at timestamptz, breached boolean, channel text, team_id uuid, assignee_id uuid)
    ON CONFLICT (conversation_id, target, started_at) DO UPDATE
       SET stopped_at = coalesce(excluded.stopped_at, r.stopped_at),
           breached = r.breached OR excluded.breached
    """
)


@dataclass(frozen=True)
class Alarm:
    """A warning or a breach to raise."""

    event: str  # WARNING or BREACHED
    conversation_id: uuid.UUID
    target: str
    policy: Policy
    started_at: datetime
    due_at: datetime
    at: datetime  # the moment it happened: the warning's or the due instant
    team_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    channel: str
    priority: str
    # what a late discovery does not do: a breach found after its clock stopped (the team
    # answered or resolved before the job ran) escalates nothing, so a resolved or answered
    # conversation is never moved; one found by a clock's first computing (a new or edited
    # policy over conversations already overdue) neither escalates nor e-mails: recorded,
    # live and webhooks only, where it would flood the team
    escalate: bool = True
    email: bool = True


@dataclass
class Checked:
    computed: int = 0
    recorded: int = 0
    warnings: int = 0
    breaches: int = 0
    more: bool = False  # the run's limit was reached: the rest waits for the next run


@dataclass
class _Batch:
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    finished: list[uuid.UUID] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)


def _judge(row: Any, context: _Context, now: datetime, batch: _Batch) -> None:
    """What one clock the job looks at comes to: its instants, its record, its alarms."""
    facts = Facts(row.priority, row.channel, row.team_id, frozenset(row.labels or ()))
    if row.stale:
        policy = context.policy_for(facts)
        t = _times(context, policy, row.target, row.team_id, row.started_at)
    else:
        policy = context.policy(row.policy_id)
        t = Times(row.due_at, row.warn_at)
    warned_at, breached_at = row.warned_at, row.breached_at

    def record(stopped_at: datetime | None, breached: bool) -> None:
        assert t.due_at is not None
        batch.records.append(
            (
                row.conversation_id,
                policy.id if policy else None,
                row.target,
                row.started_at,
                t.due_at,
                stopped_at,
                breached,
                row.channel,
                row.team_id,
                row.assignee_id,
            )
        )

    def alarm(event: str, at: datetime) -> None:
        assert policy is not None
        assert t.due_at is not None
        found_overdue = row.stale and now >= t.due_at  # computed (again) already past its due time
        batch.alarms.append(
            Alarm(
                event,
                row.conversation_id,
                row.target,
                policy,
                row.started_at,
                t.due_at,
                at,
                row.team_id,
                row.assignee_id,
                row.channel,
                row.priority,
                escalate=row.stopped_at is None and not found_overdue,
                email=not found_overdue,
            )
        )

    if row.stopped_at is not None:  # stopped: recorded (a breach not yet raised is raised now)
        if t.due_at is not None:
            late = row.stopped_at > t.due_at
            if late and breached_at is None:
                alarm(BREACHED, t.due_at)
            record(row.stopped_at, late)
        batch.finished.append(row.id)
        return
    if t.due_at is not None and breached_at is None and now >= t.due_at:
        breached_at = t.due_at
        warned_at = warned_at or t.warn_at  # a warning whose moment passed with the breach is not raised
        alarm(BREACHED, t.due_at)
        record(None, True)
    elif t.warn_at is not None and warned_at is None and breached_at is None and now >= t.warn_at:
        warned_at = t.warn_at
        alarm(WARNING, t.warn_at)
    batch.updates.append(
        (
            row.id,
            policy.id if policy else None,
            t.due_at,
            t.warn_at,
            warned_at,
            breached_at,
            next_alarm(t, warned_at=warned_at, breached_at=breached_at),
        )
    )


def _rows(names: Sequence[str], rows: list[tuple[Any, ...]]) -> str:
    """Rows as a JSON array of objects, for ``jsonb_to_recordset``."""
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_json_value)


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # a UUID


async def _write(session: AsyncSession, company_id: uuid.UUID, batch: _Batch) -> None:
    if batch.updates:
        names = ("id", "policy_id", "due_at", "warn_at", "warned_at", "breached_at", "alarm_at")
        await session.execute(_WRITE, {"company": company_id, "rows": _rows(names, batch.updates)})
    if batch.records:
        record_names = (
            "conversation_id",
            "policy_id",
            "target",
            "started_at",
            "due_at",
            "stopped_at",
            "breached",
            "channel",
            "team_id",
            "assignee_id",
        )
        await session.execute(_RECORD, {"company": company_id, "rows": _rows(record_names, batch.records)})
    if batch.finished:
        await session.execute(
            delete(SlaClock)
            .where(SlaClock.id.in_(batch.finished))
            .execution_options(synchronize_session=False)
        )


async def companies_to_check(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """The companies with a clock to compute or an alarm due by ``now`` (a platform session:
    the job's first look, on the two partial indexes)."""
    rows = await session.execute(
        text(
            "SELECT company_id FROM sla_clocks WHERE stale"
            " UNION SELECT company_id FROM sla_clocks WHERE alarm_at <= :now"
        ),
        {"now": now},
    )
    return [r[0] for r in rows]


# at most this many clocks of a company per run: the alarms due first, then the clocks to compute,
# oldest first. A change that makes every clock stale (a policy edited with 40,000 conversations
# open) is computed over a few runs, each well within the job's period; meanwhile a
# conversation's SLA read through the API or the dashboard is computed on the spot.
RUN_LIMIT = 20_000


async def check(
    session: AsyncSession, runtime: Runtime, company_id: uuid.UUID, now: datetime, *, limit: int = RUN_LIMIT
) -> Checked:
    """Compute the company's new and changed clocks, record the stopped ones, and raise the
    warnings and breaches whose moment has come by ``now`` (each once: its moment is stored);
    at most ``limit`` clocks, the rest on the next run (``Checked.more``)."""
    rows = (await session.execute(_PENDING, {"company": company_id, "now": now, "limit": limit})).all()
    done = Checked()
    if not rows:
        return done
    context = await _context(session, company_id, {r.team_id for r in rows})
    batch = _Batch()
    for row in rows:
        _judge(row, context, now, batch)
    await _write(session, company_id, batch)
    done.computed = sum(1 for r in rows if r.stale)
    done.more = len(rows) == limit
    done.recorded = len(batch.records)
    await _announce(session, runtime, batch.alarms)
    for (event, target), raised in Counter((a.event, a.target) for a in batch.alarms).items():
        kind = "warning" if event == WARNING else "breached"
        metrics.count_on_commit(session, metrics.SLA_EVENTS, kind, target, amount=raised)
    done.warnings = sum(1 for a in batch.alarms if a.event == WARNING)
    done.breaches = len(batch.alarms) - done.warnings
    return done


def _event(raised: Alarm) -> dict[str, Any]:
    return {
        "conversation_id": str(raised.conversation_id),
        "target": raised.target,
        "policy_id": str(raised.policy.id),
        "policy": raised.policy.name,
        "priority": raised.priority,
        "channel": raised.channel,
        "team_id": str(raised.team_id) if raised.team_id else None,
        "assignee_id": str(raised.assignee_id) if raised.assignee_id else None,
        "started_at": raised.started_at.isoformat(),
        "due_at": raised.due_at.isoformat(),
        "at": raised.at.isoformat(),
    }


async def _announce(session: AsyncSession, runtime: Runtime, alarms: list[Alarm]) -> None:
    """Raise each alarm: live, the webhooks some endpoint subscribes to, the e-mail and the
    escalation its policy asks for."""
    if not alarms:
        return
    company_id = company_of(session)
    queue = conversations.queue_topic(company_id)
    hooked = await webhooks.subscribed(session, (WARNING, BREACHED))
    mailing = _Mailing()
    for raised in alarms:
        data = _event(raised)
        level = "warning" if raised.event == WARNING else "breached"
        await publish(session, queue, LIVE_KIND, level=level, **data)
        await publish(session, str(raised.conversation_id), LIVE_KIND, level=level, target=raised.target)
        if raised.event in hooked:
            await webhooks.emit(session, runtime.jobs, raised.event, data)
        policy = raised.policy
        notified = raised.team_id
        if raised.event == BREACHED and raised.escalate and policy.escalation_team_id is not None:
            if policy.escalation == Escalation.reassign and raised.team_id != policy.escalation_team_id:
                await conversations.queue_for_team(
                    session,
                    runtime.jobs,
                    raised.conversation_id,
                    policy.escalation_team_id,
                    actor_type="system",
                    actor_id="sla",
                    now=raised.at,
                )
                notified = policy.escalation_team_id
            elif policy.escalation == Escalation.notify:
                notified = policy.escalation_team_id
                await publish(
                    session, queue, LIVE_KIND, level="escalated", notify_team_id=str(notified), **data
                )
        if policy.email_team and raised.email:
            await mailing.send(session, runtime, raised, notified)


class _Mailing:
    """The e-mails of one run: the company's agents read once."""

    def __init__(self) -> None:
        self._agents: list[teams.Agent] | None = None

    async def send(
        self, session: AsyncSession, runtime: Runtime, raised: Alarm, team_id: uuid.UUID | None
    ) -> None:
        if self._agents is None:
            self._agents = await teams.agents(session)
        await _email(session, runtime, raised, team_id, self._agents)


async def _email(
    session: AsyncSession,
    runtime: Runtime,
    raised: Alarm,
    team_id: uuid.UUID | None,
    agents: list[teams.Agent],
) -> None:
    """E-mail the team's agents (every agent's when the conversation has no team)."""
    slug = None
    if team_id is not None:
        team = await session.get(Team, team_id)
        slug = team.slug if team is not None else None
    to = sorted({a.user.email for a in agents if slug is None or slug in a.teams})
    what = "breached" if raised.event == BREACHED else "is about to breach"
    target = raised.target.replace("_", " ")
    link = f"{runtime.settings.public_url.rstrip('/')}/app/conversations/{raised.conversation_id}"
    for address in to:
        await mail.enqueue(
            session,
            runtime,
            mail.Mail(
                to=address,
                subject=f"SLA {what}: {target} ({raised.policy.name})",
                text=(
                    f"The {target} target of a conversation {what}.\n\n"
                    f"Policy: {raised.policy.name}\nPriority: {raised.priority}\n"
                    f"Due: {raised.due_at.isoformat()}\n\n{link}\n"
                ),
            ),
        )
