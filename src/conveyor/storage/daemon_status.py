"""Each scheduler daemon's health: when it passed last, how long that took, its last error.

A daemon writes one row of its own, upserted after its passes
(``scheduler.daemon``); the web UI and the API read them all. A daemon that
stopped or died leaves its row: its ``last_pass_at`` says how long ago it was
last heard from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select

from conveyor.storage.db import Database
from conveyor.storage.records import to_datetime
from conveyor.storage.schema import daemon_status
from conveyor.storage.upsert import dialect_insert


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """One daemon as it last reported. ``last_error`` is the newest error a pass had
    (``"step: Type: message"``), kept until another replaces it: it is current when
    ``last_error_at`` is ``last_pass_at``."""

    daemon_id: str
    host: str
    pid: int
    started_at: datetime
    last_pass_at: datetime
    last_pass_seconds: float
    passes: int
    last_error: str | None
    last_error_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "daemon_id": self.daemon_id,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "last_pass_at": self.last_pass_at.isoformat(),
            "last_pass_seconds": self.last_pass_seconds,
            "passes": self.passes,
            "last_error": self.last_error,
            "last_error_at": None if self.last_error_at is None else self.last_error_at.isoformat(),
        }


class DaemonStatusStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def beat(
        self,
        daemon_id: str,
        *,
        host: str,
        pid: int,
        started_at: float,
        pass_seconds: float,
        error: str | None,
        passes: int = 1,
        at: float | None = None,
    ) -> None:
        """Record that daemon ``daemon_id`` made ``passes`` more passes, the last one
        taking ``pass_seconds`` and ending ``at`` (default now), with ``error`` (the first
        error of the pass, if any). One upsert."""
        import time

        now = time.time() if at is None else at
        row = {
            "daemon_id": daemon_id,
            "host": host,
            "pid": pid,
            "started_at": started_at,
            "last_pass_at": now,
            "last_pass_seconds": pass_seconds,
            "passes": passes,
            "last_error": error,
            "last_error_at": None if error is None else now,
        }
        with self.db.write() as conn:
            stmt = dialect_insert(conn, daemon_status)
            new = stmt.excluded
            # A pass without an error keeps the error before it (and when it was).
            stmt = stmt.on_conflict_do_update(
                index_elements=["daemon_id"],
                set_={
                    "host": new.host,
                    "pid": new.pid,
                    "started_at": new.started_at,
                    "last_pass_at": new.last_pass_at,
                    "last_pass_seconds": new.last_pass_seconds,
                    "passes": daemon_status.c.passes + new.passes,
                    "last_error": case(
                        (new.last_error.is_(None), daemon_status.c.last_error),
                        else_=new.last_error,
                    ),
                    "last_error_at": case(
                        (new.last_error.is_(None), daemon_status.c.last_error_at),
                        else_=new.last_error_at,
                    ),
                },
            )
            conn.execute(stmt, row)

    def all(self) -> list[DaemonStatus]:
        """Every daemon that reported, the one heard from most recently first."""
        q = select(daemon_status).order_by(
            daemon_status.c.last_pass_at.desc(), daemon_status.c.daemon_id
        )
        with self.db.read() as conn:
            return [_status(r) for r in conn.execute(q)]

    def forget(self, daemon_id: str) -> bool:
        """Remove a daemon's row (one that stopped for good); True if there was one."""
        with self.db.write() as conn:
            gone = conn.execute(
                daemon_status.delete().where(daemon_status.c.daemon_id == daemon_id)
            )
            return bool(gone.rowcount)


def _status(r: Any) -> DaemonStatus:
    started, last = to_datetime(r.started_at), to_datetime(r.last_pass_at)
    assert started is not None
    assert last is not None
    return DaemonStatus(
        daemon_id=r.daemon_id,
        host=r.host,
        pid=int(r.pid),
        started_at=started,
        last_pass_at=last,
        last_pass_seconds=float(r.last_pass_seconds),
        passes=int(r.passes),
        last_error=r.last_error,
        last_error_at=to_datetime(r.last_error_at),
    )
