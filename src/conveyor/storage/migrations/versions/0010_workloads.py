"""Long-running workloads: services, apps, interactive jobs and Excel add-ins, each
with the state its supervisor last saw and the lease that makes it the one owner.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workloads",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("desired", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float()),
        sa.Column("token", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.Column("pid_started", sa.Float()),
        sa.Column("port", sa.Integer()),
        sa.Column("started_at", sa.Float()),
        sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_start_at", sa.Float()),
        sa.Column("last_exit_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("health", sa.String(255)),
        sa.Column("last_request_at", sa.Float()),
        sa.Column("run_id", sa.String(32)),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_workloads"),
    )


def downgrade() -> None:
    op.drop_table("workloads")
