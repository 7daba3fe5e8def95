"""The tick store: each trigger firing recorded once, with the run it launched."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from conveyor.storage.db import Database
from conveyor.storage.runs import RunStore, new_run_id
from conveyor.storage.schema import runs, ticks
from conveyor.storage.states import RunStatus


class TickStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def fire(
        self,
        key: str,
        *,
        job_name: str,
        trigger: str,
        tick_at: float,
        run: dict[str, Any],
    ) -> str | None:
        """Record tick ``key`` and queue its run, in one transaction; exactly once.

        ``run`` holds the run's fields for ``RunStore.create`` (job_version,
        tags, run_config, origin...). Returns the new run's id, or ``None``
        when the tick had already fired (another daemon, or before a restart).
        """
        rid = new_run_id()
        now = time.time()
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(ticks).values(
                        key=key,
                        job_name=job_name,
                        trigger=trigger,
                        tick_at=tick_at,
                        run_id=rid,
                        created_at=now,
                    )
                )
                conn.execute(
                    insert(runs).values(
                        RunStore.new_row(
                            rid,
                            job_name=job_name,
                            status=RunStatus.QUEUED,
                            trigger=trigger,
                            now=now,
                            **run,
                        )
                    )
                )
        except IntegrityError:
            return None
        return rid

    def last(self, job_name: str, trigger: str) -> float | None:
        """When the newest recorded tick of this trigger was due (epoch seconds)."""
        with self.db.read() as conn:
            value = conn.execute(
                select(func.max(ticks.c.tick_at)).where(
                    ticks.c.job_name == job_name, ticks.c.trigger == trigger
                )
            ).scalar()
        return None if value is None else float(value)

    def for_job(self, job_name: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Recorded ticks of a job, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(ticks)
                .where(ticks.c.job_name == job_name)
                .order_by(ticks.c.tick_at, ticks.c.key)
                .limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]
