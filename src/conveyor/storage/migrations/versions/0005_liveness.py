"""Run liveness: a fencing token per run, the process responsible for it, and how many
batches of its records are written.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("token", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("batches", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("pid", sa.Integer()))
        batch.add_column(sa.Column("pid_started", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid_started")
        batch.drop_column("pid")
        batch.drop_column("host")
        batch.drop_column("batches")
        batch.drop_column("token")
