"""Deployments: versions of the workspace's code, environments with their active
version and history, and the version and environment each run ran in.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("archive_uri", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.String(1024), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("requirements", sa.Text()),
        sa.Column("requirements_hash", sa.String(64)),
        sa.Column("git", sa.JSON()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("message", sa.Text()),
        sa.PrimaryKeyConstraint("number", name="pk_versions"),
        sa.UniqueConstraint("hash", name="uq_versions_hash"),
    )
    op.create_table(
        "environments",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("active_version", sa.Integer()),
        sa.Column("activations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float()),
        sa.Column("updated_by", sa.String(255)),
        sa.PrimaryKeyConstraint("name", name="pk_environments"),
        sa.ForeignKeyConstraint(
            ["active_version"],
            ["versions.number"],
            name="fk_environments_active_version_versions",
        ),
    )
    op.create_table(
        "deployments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_environment", sa.String(64)),
        sa.Column("previous_version", sa.Integer()),
        sa.Column("activation", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("by", sa.String(255)),
        sa.Column("message", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["version"], ["versions.number"], name="fk_deployments_version_versions"
        ),
    )
    op.create_index("ix_deployments_environment_id", "deployments", ["environment", "id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deployed_version", sa.Integer()))
        batch.add_column(sa.Column("environment", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("environment")
        batch.drop_column("deployed_version")
    op.drop_index("ix_deployments_environment_id", table_name="deployments")
    op.drop_table("deployments")
    op.drop_table("environments")
    op.drop_table("versions")
