"""Signals that wait for a job's next run (a refresh sent down the freshness graph)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, select

from conveyor.storage.db import Database
from conveyor.storage.schema import signals
from conveyor.storage.upsert import insert_or_update


class SignalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, job_names: Iterable[str], kind: str) -> None:
        """Leave ``kind`` for the next run of each job (once: sending twice is one signal)."""
        now = time.time()
        rows = [{"job_name": name, "kind": kind, "at": now} for name in dict.fromkeys(job_names)]
        if not rows:
            return
        with self.db.write() as conn:
            # A signal already waiting for a job stays as it is, with its first time.
            conn.execute(insert_or_update(conn, signals, ["job_name", "kind"]), rows)

    def take(self, job_name: str, kind: str) -> bool:
        """Consume the signal for ``job_name``'s run; True if there was one."""
        with self.db.write() as conn:
            res = conn.execute(
                delete(signals).where(signals.c.job_name == job_name, signals.c.kind == kind)
            )
        return bool(res.rowcount)

    def pending(self, kind: str) -> list[str]:
        with self.db.read() as conn:
            return sorted(
                conn.execute(select(signals.c.job_name).where(signals.c.kind == kind)).scalars()
            )
