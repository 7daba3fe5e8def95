"""Signals that wait for a job's next run (a refresh sent down the freshness graph)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from conveyor.storage.db import Database
from conveyor.storage.schema import signals


class SignalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, job_names: Iterable[str], kind: str) -> None:
        """Leave ``kind`` for the next run of each job (once: sending twice is one signal)."""
        for name in job_names:
            try:
                with self.db.write() as conn:
                    conn.execute(insert(signals).values(job_name=name, kind=kind, at=time.time()))
            except IntegrityError:
                pass  # already waiting for that job

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
