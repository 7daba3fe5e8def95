"""Run partitions, lease holders long enough for a task's key, and indexes for the
scheduler's newest-run-of-a-job questions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("partition_key", sa.String(255)))
    op.create_index("ix_runs_job_name_partition_key", "runs", ["job_name", "partition_key"])
    op.create_index("ix_runs_job_name_interval_end", "runs", ["job_name", "interval_end"])
    op.create_index("ix_runs_job_name_ended_at", "runs", ["job_name", "ended_at"])
    with op.batch_alter_table("leases") as batch:
        batch.alter_column(
            "holder", existing_type=sa.String(64), type_=sa.String(300), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.alter_column(
            "holder", existing_type=sa.String(300), type_=sa.String(64), existing_nullable=False
        )
    op.drop_index("ix_runs_job_name_ended_at", table_name="runs")
    op.drop_index("ix_runs_job_name_interval_end", table_name="runs")
    op.drop_index("ix_runs_job_name_partition_key", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("partition_key")
