"""fair job queue: a company's new job waits behind as many of its own jobs as are queued

procrastinate's workers take the waiting job of highest ``priority``, then lowest id: first
in, first out. So one company's flood (hundreds of web chat messages, each a bot turn) made
every other company's customer wait until the whole flood was answered.

A trigger now gives each job that names a ``company_id`` (every company's job does: bot
turns, webhook deliveries, indexing) the priority ``-w``, where ``w`` is how many jobs of
that company are already waiting: the k-th waiting job of each company has priority
``1 - k``, so the worker serves companies in turn (the first of each, then the second of
each...) and a company with one new message waits for at most one job of each other
company, not for their backlogs. Within one conversation (the same procrastinate ``lock``)
a job never gets a higher priority than a job of that lock still waiting, so a
conversation's messages are still answered in order. Jobs without a company (periodic
maintenance) and jobs deferred with a priority of their own keep theirs. The count stops at
``CAP`` (100) jobs, so a deferral reads at most that many index entries whatever the
backlog (10,000 cost intake a third of its throughput with a backlog; benchmarks/intake.py
runs with no worker, so every message waits): past 100 waiting jobs a company's further
jobs share one priority and keep their order, and any company with fewer waiting still
goes first.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CAP = 100

FUNCTION = f"""
CREATE FUNCTION atende_fair_job_priority_v1() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_company text := NEW.args->>'company_id';
    v_waiting integer;
    v_lock_priority integer;
BEGIN
    IF v_company IS NULL OR NEW.status <> 'todo' OR NEW.priority <> 0 THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO v_waiting FROM (
        SELECT 1 FROM procrastinate_jobs
         WHERE status = 'todo' AND args->>'company_id' = v_company
         LIMIT {CAP}) waiting;
    NEW.priority := -v_waiting;
    IF NEW.lock IS NOT NULL THEN
        SELECT min(priority) INTO v_lock_priority FROM procrastinate_jobs
         WHERE status = 'todo' AND lock = NEW.lock;
        NEW.priority := least(NEW.priority, coalesce(v_lock_priority, 0));
    END IF;
    RETURN NEW;
END;
$$;
"""


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_procrastinate_jobs_waiting_company ON procrastinate_jobs ((args->>'company_id'))"
        " WHERE status = 'todo'"
    )
    op.execute(
        "CREATE INDEX ix_procrastinate_jobs_waiting_lock ON procrastinate_jobs (lock, priority)"
        " WHERE status = 'todo' AND lock IS NOT NULL"
    )
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER atende_fair_job_priority BEFORE INSERT ON procrastinate_jobs"
        " FOR EACH ROW EXECUTE FUNCTION atende_fair_job_priority_v1()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER atende_fair_job_priority ON procrastinate_jobs")
    op.execute("DROP FUNCTION atende_fair_job_priority_v1()")
    op.execute("DROP INDEX ix_procrastinate_jobs_waiting_lock")
    op.execute("DROP INDEX ix_procrastinate_jobs_waiting_company")
