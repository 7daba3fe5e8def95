"""Alembic environment: migrations always run on a connection Conveyor passes in."""

from __future__ import annotations

from alembic import context

from conveyor.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Conveyor's migrations run from code (Instance start-up), on a connection it passes in"
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
