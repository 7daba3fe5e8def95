"""The tick store: each trigger firing recorded once, with the run it launched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from conveyor.storage.db import Database
from conveyor.storage.runs import RunStore, new_run_id
from conveyor.storage.schema import runs, ticks
from conveyor.storage.states import RunStatus


@dataclass(frozen=True, slots=True)
class TickSpec:
    """A tick to fire: its unique key, what fired it, and its run's fields."""

    key: str
    job_name: str
    trigger: str
    tick_at: float
    run: dict[str, Any]


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
        return self._fire_one(TickSpec(key, job_name, trigger, tick_at, run))

    def _fire_one(self, tick: TickSpec) -> str | None:
        rid = new_run_id()
        try:
            with self.db.write() as conn:
                self._insert(conn, [(tick, rid)], time.time())
        except IntegrityError:
            return None
        return rid

    def fire_many(self, batch: Sequence[TickSpec]) -> list[str | None]:
        """``fire`` each tick of ``batch``, in one transaction when none has fired yet.

        Returns, in order, each new run's id or ``None`` for a tick that had
        already fired. The batch checks its keys first; if another daemon
        fires one of them meanwhile, the batch is undone and each tick is
        fired on its own, so a tick still fires exactly once.
        """
        if len(batch) <= 1:
            return [self._fire_one(t) for t in batch]
        ids = [new_run_id() for _ in batch]
        try:
            with self.db.write() as conn:
                taken = set(
                    conn.execute(
                        select(ticks.c.key).where(ticks.c.key.in_([t.key for t in batch]))
                    ).scalars()
                )
                fresh = [(t, rid) for t, rid in zip(batch, ids, strict=True) if t.key not in taken]
                if fresh:
                    self._insert(conn, fresh, time.time())
        except IntegrityError:
            return [self._fire_one(t) for t in batch]
        return [None if t.key in taken else rid for t, rid in zip(batch, ids, strict=True)]

    @staticmethod
    def _insert(conn: Connection, fired: Sequence[tuple[TickSpec, str]], now: float) -> None:
        """Insert ticks with their queued runs (``(tick, run id)`` pairs)."""
        conn.execute(
            insert(ticks),
            [
                {
                    "key": t.key,
                    "job_name": t.job_name,
                    "trigger": t.trigger,
                    "tick_at": t.tick_at,
                    "run_id": rid,
                    "created_at": now,
                }
                for t, rid in fired
            ],
        )
        conn.execute(
            insert(runs),
            [
                RunStore.new_row(
                    rid,
                    job_name=t.job_name,
                    status=RunStatus.QUEUED,
                    trigger=t.trigger,
                    now=now,
                    **t.run,
                )
                for t, rid in fired
            ],
        )

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
