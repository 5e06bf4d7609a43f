"""The external credentials atende holds for companies, verified for ``/health/ready``.

A *source* lists the credentials configured now: ``atende.llm.credentials`` lists the
deployment's and each company's OpenAI-compatible LLM and embeddings endpoints; a WhatsApp,
Twilio or e-mail channel registers its own the same way (``register``, in the wiring). Each
``Credential`` has a kind, its company (``None``: the deployment's own), a label an
operator recognises (a host, a phone number id; never a secret), a fingerprint (a changed
key is a new credential) and ``check()``, one cheap authenticated call that answers a
``Verdict``: ok, and why not.

``CredentialMonitor`` (one per runtime) runs the checks in the background, at most once per
``ATENDE_CREDENTIAL_CHECK_INTERVAL_SECONDS``, a few at a time, each within
``ATENDE_CREDENTIAL_CHECK_TIMEOUT_SECONDS``, one call per fingerprint; readiness waits
briefly for a running round and otherwise shows the last results. A round that fails as a
whole (a bug, a source's malformed listing) is logged (``credential.round_failed``) and
shown as a failing check until the next one. Changes are logged (``credential.failing``,
``credential.recovered``, with the company) and counted by kind in Prometheus
(``atende_credentials``, ``atende_credentials_failing``; no company label: one series per
company would grow without bound).

A failing credential *degrades* readiness, it never fails it: this instance cannot fix a
company's expired key, and leaving the load balancer would take every other company down too.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from atende.observability import events, metrics
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

MONITOR = "credential_monitor"  # key of the runtime's monitor in ``Runtime.extras``
CONCURRENCY = 8  # checks running at once
WAIT_SECONDS = 1.0  # longest a readiness probe waits for a running round (see health.BUDGET_SECONDS)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Credential:
    kind: str  # "llm", "embeddings"; later "whatsapp", "twilio", "email"...
    company_id: uuid.UUID | None  # None: the deployment's own
    label: str  # what it opens, for operators: a host, a number id (never the secret)
    fingerprint: str  # equal for the same secret at the same place: checked once per round
    check: Callable[[], Awaitable[Verdict]] = field(compare=False, repr=False)


Source = Callable[[Runtime], Awaitable[Sequence[Credential]]]
_SOURCES: dict[str, Source] = {}


def register(name: str, source: Source) -> None:
    """Add (or replace) a source of credentials; every runtime's next round lists it."""
    _SOURCES[name] = source


def unregister(name: str) -> None:
    _SOURCES.pop(name, None)


@dataclass(frozen=True)
class CredentialState:
    credential: Credential
    verdict: Verdict


@dataclass(frozen=True)
class Snapshot:
    states: tuple[CredentialState, ...] = ()
    finished_at: float | None = None  # on the monitor's clock; None: no round finished yet
    unlisted: tuple[str, ...] = ()  # sources that could not list their credentials, and why
    error: str | None = None  # the last round failed, and why (the results are an earlier round's)

    @property
    def failing(self) -> list[CredentialState]:
        return [s for s in self.states if not s.verdict.ok]


class CredentialMonitor:
    """The last verdicts on every registered credential, refreshed in the background."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.interval = interval
        self.timeout = timeout
        self.clock = clock  # monotonic seconds; tests move it
        self.last = Snapshot()
        self._started_at: float | None = None
        self._round: asyncio.Task[None] | None = None
        self._was_ok: dict[tuple[str, str, str | None], bool] = {}
        self._kinds: set[str] = set()

    def refresh(self) -> None:
        """Start a round unless one runs or the last one started less than an interval ago."""
        if self._round is not None and not self._round.done():
            return
        now = self.clock()
        if self._started_at is not None and now - self._started_at < self.interval:
            return
        self._started_at = now
        # a context of its own: the round outlives the probe that started it, and its logs
        # are no request's (no request_id bound)
        self._round = asyncio.create_task(
            self._run(), name="credential-checks", context=contextvars.Context()
        )
        # a round nobody awaits (the probe waits a second at most): its failure is kept and
        # logged here, or it would be lost
        self._round.add_done_callback(self._finished, context=contextvars.Context())

    async def snapshot(self, wait: float | None = None) -> Snapshot:
        """The latest results, after waiting up to ``wait`` seconds (``WAIT_SECONDS``) for a
        running round."""
        self.refresh()
        if self._round is not None and not self._round.done():
            # neither raises the round's error (``_finished`` keeps it) nor cancels the round
            await asyncio.wait({self._round}, timeout=WAIT_SECONDS if wait is None else wait)
        return self.last

    async def close(self) -> None:
        if self._round is not None and not self._round.done():
            self._round.cancel()
            with suppress(asyncio.CancelledError):
                await self._round

    def _finished(self, round_: asyncio.Task[None]) -> None:
        if round_.cancelled() or (exc := round_.exception()) is None:
            return
        self.last = replace(self.last, error=describe(exc))
        log.error("credential.round_failed", error=describe(exc), exc_info=exc)

    async def _run(self) -> None:
        credentials: list[Credential] = []
        unlisted: list[str] = []
        for name, source in list(_SOURCES.items()):
            try:
                async with asyncio.timeout(self.timeout):
                    credentials.extend(await source(self.runtime))
            except Exception as exc:  # a database down, a bad row: said, not raised
                unlisted.append(f"{name}: {describe(exc)}")
                log.warning("credential.unlisted", source=name, error=describe(exc))
        unique = {c.fingerprint: c for c in credentials}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def verdict_of(credential: Credential) -> Verdict:
            async with gate:
                return await self._check(credential)

        verdicts = await asyncio.gather(*(verdict_of(c) for c in unique.values()))
        by_fingerprint = dict(zip(unique, verdicts, strict=True))
        states = tuple(CredentialState(c, by_fingerprint[c.fingerprint]) for c in credentials)
        newly_failing = self._report(states)
        self.last = Snapshot(states, self.clock(), tuple(unlisted))
        for state in newly_failing:
            await _record_failing(self.runtime, state)

    async def _check(self, credential: Credential) -> Verdict:
        try:
            async with asyncio.timeout(self.timeout):
                return await credential.check()
        except TimeoutError:
            return Verdict(False, f"no answer within {self.timeout:g}s")
        except Exception as exc:  # a checker's own failure is the credential's verdict
            return Verdict(False, describe(exc))

    def _report(self, states: Sequence[CredentialState]) -> list[CredentialState]:
        """Log what changed and set the gauges; returns the credentials that began failing."""
        newly_failing: list[CredentialState] = []
        seen: dict[tuple[str, str, str | None], bool] = {}
        counts: dict[str, list[int]] = {kind: [0, 0] for kind in self._kinds}
        for state in states:
            credential, verdict = state.credential, state.verdict
            company = str(credential.company_id) if credential.company_id else None
            key = (credential.fingerprint, credential.kind, company)
            seen[key] = verdict.ok
            counts.setdefault(credential.kind, [0, 0])[0] += 1
            counts[credential.kind][1] += not verdict.ok
            before = self._was_ok.get(key)
            fields = {"kind": credential.kind, "company_id": company, "label": credential.label}
            if not verdict.ok and before is not False:
                log.warning("credential.failing", reason=verdict.reason, **fields)
                newly_failing.append(state)
            elif verdict.ok and before is False:
                log.info("credential.recovered", **fields)
        self._was_ok = seen
        for kind, (configured, failing) in counts.items():
            metrics.CREDENTIALS.labels(kind).set(configured)
            metrics.CREDENTIALS_FAILING.labels(kind).set(failing)
        self._kinds |= set(counts)
        return newly_failing


LLM_KINDS = ("llm", "embeddings")


async def _record_failing(runtime: Runtime, state: CredentialState) -> None:
    """A credential that began failing, as an error event of its company (``/app/logs``):
    once per change, not at every round."""
    credential = state.credential
    kind = (
        events.LLM_CREDENTIALS_FAILED if credential.kind in LLM_KINDS else events.CHANNEL_CREDENTIALS_FAILED
    )
    await events.record(
        runtime,
        kind,
        f"The {credential.kind} credentials for {credential.label} were refused: {state.verdict.reason}",
        level="error",
        company_id=credential.company_id,
        details={"credential": credential.kind, "label": credential.label, "reason": state.verdict.reason},
    )


def monitor_for(runtime: Runtime) -> CredentialMonitor:
    """The runtime's monitor (created on first use)."""
    monitor = runtime.extras.get(MONITOR)
    if not isinstance(monitor, CredentialMonitor):
        settings = runtime.settings
        monitor = runtime.extras[MONITOR] = CredentialMonitor(
            runtime,
            interval=settings.credential_check_interval_seconds,
            timeout=settings.credential_check_timeout_seconds,
        )
    return monitor


async def stop_monitor(runtime: Runtime) -> None:
    """Cancel a round still running (at shutdown, before the database goes away)."""
    monitor = runtime.extras.get(MONITOR)
    if isinstance(monitor, CredentialMonitor):
        await monitor.close()


def as_json(snapshot: Snapshot) -> dict[str, Any]:
    """The failing credentials, for the readiness report (company and reason, no secret)."""
    return {
        "failures": [
            {
                "kind": s.credential.kind,
                "company_id": str(s.credential.company_id) if s.credential.company_id else None,
                "label": s.credential.label,
                "reason": s.verdict.reason,
            }
            for s in snapshot.failing
        ],
        "unlisted": list(snapshot.unlisted),
    }
