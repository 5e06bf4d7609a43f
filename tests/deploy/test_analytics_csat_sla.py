"""The analytics views of migration 0042 that Metabase reads: the CSAT surveys sent and answered
through the API and their daily figures, and the SLA targets, warnings and breaches the real
SLA job raises (with an injected clock), per company; the comment's words in no view, and
the read-only login seeing the same figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from atende.db.url import libpq_url
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask
from tests.deploy.test_analytics import rows
from tests.feedback.conftest import enable, resolve, run_survey_job
from tests.sla.test_job import check_at, handed_off, policy, settled


async def answer(company: CompanyCtx, survey_id: object, score: int, comment: str | None = None) -> None:
    r = await company.client.post(f"/v1/csat/{survey_id}/answer", json={"score": score, "comment": comment})
    assert r.status_code == 200, r.text


async def surveyed(company: CompanyCtx, runtime: Runtime, how_many: int) -> list[Any]:
    await enable(company.client)
    for n in range(how_many):
        cid = (await ask(company.client, "Olá, preciso de ajuda", contact=f"csat-{n}"))["conversation_id"]
        await resolve(company.client, cid)
    sent = await run_survey_job(runtime, company.id)
    assert len(sent) == how_many
    return sent


async def test_csat_surveys_and_their_daily_figures_per_company(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime, db_url: str, reader: str
) -> None:
    happy, unhappy, changed, silent = await surveyed(company, runtime, 4)
    await answer(company, happy.survey_id, 5)
    await answer(company, unhappy.survey_id, 2, "O atendente Bruno demorou demais.")
    await answer(company, changed.survey_id, 1)
    await answer(company, changed.survey_id, 4)  # changed inside the window: the latest counts
    [theirs] = await surveyed(other_company, runtime, 1)
    await answer(other_company, theirs.survey_id, 1)

    surveys = {
        r["survey_id"]: r
        for r in rows(db_url, "SELECT * FROM analytics.csat_surveys WHERE company_id = %s", company.id)
    }
    assert set(surveys) == {s.survey_id for s in (happy, unhappy, changed, silent)}
    figures = {
        sid: (r["answered"], r["score"], r["satisfied"], r["commented"], r["channel"])
        for sid, r in surveys.items()
    }
    assert figures == {
        happy.survey_id: (True, 5, True, False, "api"),
        unhappy.survey_id: (True, 2, False, True, "api"),
        changed.survey_id: (True, 4, True, False, "api"),
        silent.survey_id: (False, None, None, False, "api"),
    }
    assert surveys[changed.survey_id]["changed_at"] is not None
    assert surveys[silent.survey_id]["response_seconds"] is None
    for row in surveys.values():
        assert str(row["conversation_id"]) in {
            str(s.conversation_id) for s in (happy, unhappy, changed, silent)
        }
        if row["answered"]:
            assert row["answered_via"] == "api"
            assert float(row["response_seconds"]) == (row["answered_at"] - row["sent_at"]).total_seconds()
    for view in ("csat_surveys", "csat_daily"):
        for row in rows(db_url, f"SELECT * FROM analytics.{view} WHERE company_id = %s", company.id):
            assert not [v for v in row.values() if isinstance(v, str) and "Bruno" in v], view

    [day] = rows(db_url, "SELECT * FROM analytics.csat_daily WHERE company_id = %s", company.id)
    sent_day = surveys[happy.survey_id]["sent_at"].astimezone(UTC).date()
    assert (day["day"], day["channel"]) == (sent_day, "api")
    counts = ("sent", "answered", "score_total", "satisfied", "neutral", "unsatisfied", "commented")
    assert tuple(day[c] for c in counts) == (4, 3, 11, 2, 0, 1, 1)
    assert float(day["response_rate"]) == 0.75
    assert float(day["average_score"]) == 3.67
    assert float(day["satisfied_share"]) == 0.6667
    [their_day] = rows(db_url, "SELECT * FROM analytics.csat_daily WHERE company_id = %s", other_company.id)
    assert (their_day["sent"], their_day["unsatisfied"], float(their_day["satisfied_share"])) == (1, 1, 0)

    with psycopg.connect(reader, autocommit=True, row_factory=dict_row) as conn:
        [mine] = conn.execute(
            "SELECT sum(sent) AS sent, sum(answered) AS answered"
            " FROM analytics.csat_daily WHERE company_id = %s",
            (company.id,),
        ).fetchall()
        assert (mine["sent"], mine["answered"]) == (4, 3)

    # a survey the job skipped (never sent: a closed WhatsApp window, no template) counts nowhere
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "UPDATE csat_surveys SET status = 'skipped', sent_at = NULL, skip_reason = 'no template'"
            " WHERE id = %s",
            (silent.survey_id,),
        )
    listed = rows(db_url, "SELECT survey_id FROM analytics.csat_surveys WHERE company_id = %s", company.id)
    assert silent.survey_id not in {r["survey_id"] for r in listed} and len(listed) == 3
    [day] = rows(db_url, "SELECT * FROM analytics.csat_daily WHERE company_id = %s", company.id)
    assert (day["sent"], day["answered"], float(day["response_rate"])) == (3, 3, 1.0)


async def test_sla_targets_warnings_and_breaches_as_the_job_raised_them(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime, db_url: str, reader: str
) -> None:
    rule = await policy(company, first_response="1h", resolution="4h")
    start = datetime(2027, 3, 1, 10, tzinfo=UTC)  # ahead of the session's worker, on the real clock
    late = await handed_off(company, runtime, start)
    answered = await handed_off(company, runtime, start)
    await settled(runtime, company, start)
    r = await company.client.post(f"/v1/conversations/{answered}/replies", json={"text": "Olá, sou a Ana."})
    assert r.status_code == 201, r.text
    await settled(runtime, company, start)
    sla = (await company.client.get(f"/v1/conversations/{late}/sla")).json()
    clocks = {c["target"]: c for c in sla["clocks"]}
    warn_at = datetime.fromisoformat(clocks["first_response"]["warn_at"])
    due_at = datetime.fromisoformat(clocks["first_response"]["due_at"])
    resolution_warn = datetime.fromisoformat(clocks["resolution"]["warn_at"])
    resolution_due = datetime.fromisoformat(clocks["resolution"]["due_at"])

    assert (await check_at(runtime, company, warn_at)).warnings == 1  # the other was answered
    assert (await check_at(runtime, company, due_at)).breaches == 1
    assert (await check_at(runtime, company, resolution_warn)).warnings == 2
    # the resolutions' breaches: their warnings were raised already, nothing more
    done = await check_at(runtime, company, resolution_due + timedelta(hours=1))
    assert (done.breaches, done.warnings) == (2, 0)
    # an unrelated company's policy and a handoff: none of its figures are ours
    await policy(other_company, first_response="1h")
    await handed_off(other_company, runtime, start)

    targets = {
        (str(r["conversation_id"]), r["target"]): r
        for r in rows(db_url, "SELECT * FROM analytics.sla_targets WHERE company_id = %s", company.id)
    }
    assert set(targets) == {
        (late, "first_response"),
        (late, "resolution"),
        (answered, "first_response"),
        (answered, "resolution"),
    }
    breached = targets[(late, "first_response")]
    assert (breached["status"], breached["breached"], breached["met"]) == ("breached", True, False)
    assert (breached["due_at"], breached["breached_at"], breached["warned_at"]) == (due_at, due_at, warn_at)
    assert breached["stopped_at"] is None and breached["policy"] == rule["name"]
    assert str(breached["policy_id"]) == rule["id"] and breached["channel"] == "api"
    met = targets[(answered, "first_response")]
    assert (met["status"], met["met"], met["breached"], met["breached_at"]) == ("met", True, False, None)
    assert met["stopped_at"] == start  # the reply came before the clock's start: met at once
    assert met["warned_at"] is None
    for cid in (late, answered):
        resolution = targets[(cid, "resolution")]
        assert (resolution["status"], resolution["breached_at"]) == ("breached", resolution_due)
        assert resolution["warned_at"] is not None

    daily = {
        (r["day"], r["target"]): (r["targets"], r["met"], r["breached"], float(r["compliance"]))
        for r in rows(db_url, "SELECT * FROM analytics.sla_daily WHERE company_id = %s", company.id)
    }
    assert daily == {
        (start.date(), "first_response"): (2, 1, 1, 0.5),
        (resolution_due.date(), "resolution"): (2, 0, 2, 0.0),
    }
    events = {
        (r["day"], r["target"]): (r["warnings"], r["breaches"], r["policy"])
        for r in rows(db_url, "SELECT * FROM analytics.sla_events_daily WHERE company_id = %s", company.id)
    }
    # (day, target): [warnings, breaches]; the resolutions' of both conversations
    expected: dict[tuple[object, str], list[int]] = {}
    for at, target, kind, how_many in (
        (warn_at, "first_response", 0, 1),
        (due_at, "first_response", 1, 1),
        (resolution_warn, "resolution", 0, 2),
        (resolution_due, "resolution", 1, 2),
    ):
        expected.setdefault((at.astimezone(UTC).date(), target), [0, 0])[kind] += how_many
    assert {k: [w, b] for k, (w, b, _name) in events.items()} == expected
    assert {name for _w, _b, name in events.values()} == {rule["name"]}
    warnings = rows(db_url, "SELECT * FROM analytics.sla_warnings WHERE company_id = %s", company.id)
    assert sorted((str(w["conversation_id"]), w["target"]) for w in warnings) == sorted(
        [(late, "first_response"), (late, "resolution"), (answered, "resolution")]
    )
    theirs = "SELECT * FROM analytics.sla_targets WHERE company_id = %s AND breached"
    assert rows(db_url, theirs, other_company.id) == []

    with psycopg.connect(reader, autocommit=True, row_factory=dict_row) as conn:
        [seen] = conn.execute(
            "SELECT sum(breaches) AS breaches, sum(warnings) AS warnings"
            " FROM analytics.sla_events_daily WHERE company_id = %s",
            (company.id,),
        ).fetchall()
        assert (seen["breaches"], seen["warnings"]) == (3, 3)
        [mine] = conn.execute(
            "SELECT sum(met) AS met, sum(targets) AS targets FROM analytics.sla_daily WHERE company_id = %s",
            (company.id,),
        ).fetchall()
        assert (mine["met"], mine["targets"]) == (1, 4)
