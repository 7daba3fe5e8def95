"""The first schema: runs, task runs, events, log pointers and results.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("job_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("ended_at", sa.Float()),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("run_config", sa.JSON(), nullable=False),
        sa.Column("selection", sa.JSON()),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("origin", sa.JSON()),
        sa.Column("parent_run_id", sa.String(32)),
        sa.Column("root_run_id", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("heartbeat_at", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_job_name_created_at", "runs", ["job_name", "created_at"])
    op.create_index("ix_runs_status_created_at", "runs", ["status", "created_at"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_root_run_id", "runs", ["root_run_id"])

    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("ended_at", sa.Float()),
        sa.Column("depends_on", sa.JSON(), nullable=False),
        sa.Column("error_type", sa.String(255)),
        sa.Column("error_message", sa.Text()),
        sa.Column("error_traceback", sa.Text()),
        sa.Column("retry_wait", sa.Float()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_task_runs_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "task_key", "attempt", name="pk_task_runs"),
    )

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(255)),
        sa.Column("attempt", sa.Integer()),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_events_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_run_id_id", "events", ["run_id", "id"])

    op.create_table(
        "logs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("uri", sa.Text()),
        sa.Column("data", sa.LargeBinary()),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_logs_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "task_key", "attempt", "stream", name="pk_logs"),
    )

    op.create_table(
        "results",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("uri", sa.Text()),
        sa.Column("data", sa.LargeBinary()),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "task_key", name="pk_results"),
    )


def downgrade() -> None:
    for table in ("results", "logs", "events", "task_runs", "runs"):
        op.drop_table(table)
