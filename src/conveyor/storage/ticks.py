"""The tick store: each trigger firing recorded once, with the run it launched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from conveyor.storage.db import Database
from conveyor.storage.runs import RunStore, new_run_id
from conveyor.storage.schema import runs, ticks
from conveyor.storage.states import RunStatus
from conveyor.storage.upsert import insert_or_update


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
        return self.fire_many([TickSpec(key, job_name, trigger, tick_at, run)])[0]

    def fire_many(self, batch: Sequence[TickSpec]) -> list[str | None]:
        """``fire`` each tick of ``batch``, in one transaction.

        Returns, in order, each new run's id or ``None`` for a tick that had
        already fired (or that comes again later in the batch). The database
        skips every tick whose key is taken (``ON CONFLICT DO NOTHING``),
        waiting for another daemon firing the same key to commit or roll
        back first, and only the ticks it inserted get a run: each tick
        fires exactly once.
        """
        if not batch:
            return []
        first: dict[str, int] = {}
        for i, t in enumerate(batch):
            first.setdefault(t.key, i)
        ids = {t.key: new_run_id() for t in batch}
        # In key order, so two daemons firing overlapping batches lock the keys in one order
        # and wait for each other instead of deadlocking (PostgreSQL).
        unique = sorted((batch[i] for i in first.values()), key=lambda t: t.key)
        now = time.time()
        with self.db.write() as conn:
            inserted = set(
                conn.execute(
                    _fire_stmt(conn),
                    [
                        {
                            "key": t.key,
                            "job_name": t.job_name,
                            "trigger": t.trigger,
                            "tick_at": t.tick_at,
                            "run_id": ids[t.key],
                            "created_at": now,
                        }
                        for t in unique
                    ],
                ).scalars()
            )
            fired = [t for t in unique if t.key in inserted]
            if fired:
                conn.execute(
                    insert(runs),
                    [
                        RunStore.new_row(
                            ids[t.key],
                            job_name=t.job_name,
                            status=RunStatus.QUEUED,
                            trigger=t.trigger,
                            now=now,
                            **t.run,
                        )
                        for t in fired
                    ],
                )
        return [
            ids[t.key] if first[t.key] == i and t.key in inserted else None
            for i, t in enumerate(batch)
        ]

    def last(self, job_name: str, trigger: str) -> float | None:
        """When the newest recorded tick of this trigger was due (epoch seconds)."""
        with self.db.read() as conn:
            value = conn.execute(_LAST, {"t_job": job_name, "t_trigger": trigger}).scalar()
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

    def newest(self, job_name: str, trigger: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` ticks of one trigger of a job, newest first (by its index)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(ticks)
                .where(ticks.c.job_name == job_name, ticks.c.trigger == trigger)
                .order_by(ticks.c.tick_at.desc(), ticks.c.key.desc())
                .limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]


_LAST = select(func.max(ticks.c.tick_at)).where(
    ticks.c.job_name == bindparam("t_job"), ticks.c.trigger == bindparam("t_trigger")
)
_FIRE: dict[str, Any] = {}


def _fire_stmt(conn: Connection) -> Any:
    """``fire_many``'s insert for ``conn``'s database, built once: executed with many rows,
    SQLAlchemy sends them in batches of multi-row ``VALUES`` with ``RETURNING``, which returns
    the keys of the ticks inserted (not those skipped as taken)."""
    dialect = conn.dialect.name
    if dialect not in _FIRE:
        _FIRE[dialect] = insert_or_update(conn, ticks, ["key"]).returning(ticks.c.key)
    return _FIRE[dialect]
