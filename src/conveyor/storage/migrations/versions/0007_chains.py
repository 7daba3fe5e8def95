"""Where each chained trigger starts: the newest run end when a daemon first saw it.

A daemon started on a home that held old runs fired a chained run for each
old upstream end it found past a cursor shared by every workspace. A chain
now fires only for the ends after the one that was newest when a daemon
first saw it. No row is copied in: on a home upgraded to this revision every
chain is seen for the first time by the next daemon, and the runs that ended
before it do not fire it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chains",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("after_end", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_chains"),
    )


def downgrade() -> None:
    op.drop_table("chains")
