"""The event store: what happened in a run besides state changes (errors, retries, hooks)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from conveyor.errors import NotFoundError
from conveyor.storage.db import Database
from conveyor.storage.records import EventRecord
from conveyor.storage.schema import events


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def write(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.execute(events.insert(), list(rows))

    def add(self, run_id: str, kind: str, message: str) -> None:
        """Record an event about a run from outside its process (the daemon).

        Raises:
            NotFoundError: there is no run ``run_id``.
        """
        row = {
            "run_id": run_id,
            "task_key": None,
            "attempt": None,
            "at": time.time(),
            "kind": kind,
            "message": message,
            "data": None,
        }
        try:
            with self.db.write() as conn:
                self.write(conn, [row])
        except IntegrityError as e:  # the one constraint an event can break: its run's key
            raise NotFoundError(
                f"no run {run_id!r} to record a {kind!r} event for; list runs with "
                f"`conveyor runs list`"
            ) from e

    def for_run(self, run_id: str, *, kinds: Sequence[str] | None = None) -> list[EventRecord]:
        """The run's events in the order they were recorded, only ``kinds`` if given."""
        q = select(events).where(events.c.run_id == run_id)
        if kinds:
            q = q.where(events.c.kind.in_(list(kinds)))
        with self.db.read() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(q.order_by(events.c.id))]
