"""What the web UI and REST API read and switch: run lists at scale, triggers switched
off, daemon health, and backfills as records.

Lists of runs are newest first, paged by the key (created_at, id): the index on
``created_at`` alone becomes one on both, and runs are found by trigger, start
time and (on PostgreSQL, with a GIN index) tag. The new tables start empty: every
trigger is on, no daemon has reported, and the backfills made before are not
records (their runs keep their ``backfill`` tag).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TAGS_INDEX = "(CAST(tags AS JSONB)) jsonb_path_ops"


def upgrade() -> None:
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_trigger_created_at", "runs", ["trigger", "created_at"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    if op.get_context().dialect.name == "postgresql":
        op.create_index("ix_runs_tags", "runs", [sa.text(TAGS_INDEX)], postgresql_using="gin")
    op.create_table(
        "trigger_state",
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "trigger", name="pk_trigger_state"),
    )
    op.create_table(
        "daemon_status",
        sa.Column("daemon_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_pass_at", sa.Float(), nullable=False),
        sa.Column("last_pass_seconds", sa.Float(), nullable=False),
        sa.Column("passes", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", sa.Float()),
        sa.PrimaryKeyConstraint("daemon_id", name="pk_daemon_status"),
    )
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backfills"),
    )
    op.create_index("ix_backfills_created_at", "backfills", ["created_at"])
    op.create_index("ix_backfills_job_name_created_at", "backfills", ["job_name", "created_at"])
    op.create_table(
        "backfill_runs",
        sa.Column("backfill_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name="fk_backfill_runs_backfill_id_backfills",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_backfill_runs_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("backfill_id", "run_id", name="pk_backfill_runs"),
    )
    op.create_index("ix_backfill_runs_run_id", "backfill_runs", ["run_id"])


def downgrade() -> None:
    op.drop_table("backfill_runs")
    op.drop_table("backfills")
    op.drop_table("daemon_status")
    op.drop_table("trigger_state")
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_runs_tags", table_name="runs")
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_index("ix_runs_trigger_created_at", table_name="runs")
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
