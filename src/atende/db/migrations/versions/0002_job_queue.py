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
    op.execute(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        "procrastinate_jobs, procrastinate_workers CASCADE"
    )
