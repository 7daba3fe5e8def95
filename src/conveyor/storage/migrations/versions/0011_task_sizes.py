"""What each task attempt ran with: its cpu and memory, so that a run's details show
the sizes of the version that ran, not of today's definition.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("cpu", sa.Float()))
        batch.add_column(sa.Column("memory", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("memory")
        batch.drop_column("cpu")
