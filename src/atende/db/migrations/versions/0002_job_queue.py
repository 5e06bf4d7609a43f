"""job queue: procrastinate's schema (procrastinate 3.10.0, pinned)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from importlib.resources import files

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # procrastinate ships its schema as SQL; later procrastinate upgrades get their own
    # migration applying the files under procrastinate/sql/migrations.
    op.execute(files("procrastinate.sql").joinpath("schema.sql").read_text())


def downgrade() -> None:
    # everything schema.sql created: tables, then its functions and types (found by prefix)
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
                procrastinate_jobs, procrastinate_workers CASCADE;
            FOR r IN SELECT oid::regprocedure AS f FROM pg_proc
                      WHERE proname LIKE 'procrastinate\\_%' AND pronamespace = current_schema()::regnamespace
            LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || r.f || ' CASCADE';
            END LOOP;
            FOR r IN SELECT typname FROM pg_type
                      WHERE typname LIKE 'procrastinate\\_%' AND typnamespace = current_schema()::regnamespace
                        AND (typtype = 'e' OR (typtype = 'c' AND typrelid IN
                             (SELECT oid FROM pg_class WHERE relkind = 'c')))
            LOOP
                EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
            END LOOP;
        END $$;
        """
    )
