"""Run ends in the order of a database sequence, and an index for the run queue.

The daemons found the runs that ended since their last look by ``ended_at``,
a time of the clock of whichever process ended the run, less a 5 s margin: a
run ended by a process whose clock was behind was never seen. ``run_ends`` is
read by its sequence id instead. The runs that had ended are copied in, oldest
first, so that a daemon's stored time cursor can be turned into an id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_ends",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_ends"),
    )
    op.execute(
        "INSERT INTO run_ends (run_id, job_name, status, at) "
        "SELECT id, job_name, status, ended_at FROM runs "
        "WHERE status IN ('success', 'failure', 'canceled') AND ended_at IS NOT NULL "
        "ORDER BY ended_at, id"
    )
    op.create_index(
        "ix_runs_status_job_name_created_at", "runs", ["status", "job_name", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_runs_status_job_name_created_at", table_name="runs")
    op.drop_table("run_ends")
