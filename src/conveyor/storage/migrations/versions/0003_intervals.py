"""Run intervals, signals for jobs, pools, sensor state and webhook calls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("interval_start", sa.Float()))
        batch.add_column(sa.Column("interval_end", sa.Float()))
    op.create_index("ix_runs_job_name_interval_start", "runs", ["job_name", "interval_start"])
    op.create_table(
        "signals",
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("job_name", "kind", name="pk_signals"),
    )
    op.create_table(
        "pools",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pools"),
    )
    op.create_table(
        "sensor_state",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cursor", sa.Text()),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sensor_state"),
    )
    op.create_table(
        "webhook_calls",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("payload", sa.JSON()),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_calls"),
    )
    op.create_index("ix_webhook_calls_at", "webhook_calls", ["at"])


def downgrade() -> None:
    op.drop_table("webhook_calls")
    op.drop_table("sensor_state")
    op.drop_table("pools")
    op.drop_table("signals")
    op.drop_index("ix_runs_job_name_interval_start", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("interval_end")
        batch.drop_column("interval_start")
