"""The scheduler's tables: ticks (exactly-once firing) and concurrency leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_ended_at", "runs", ["ended_at"])
    op.create_table(
        "ticks",
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("tick_at", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_ticks"),
    )
    op.create_index(
        "ix_ticks_job_name_trigger_tick_at", "ticks", ["job_name", "trigger", "tick_at"]
    )
    op.create_table(
        "leases",
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "slot", name="pk_leases"),
    )
    op.create_index("ix_leases_holder", "leases", ["holder"])


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("ticks")
    op.drop_index("ix_runs_ended_at", table_name="runs")
