"""Concurrency leases: numbered slots per scope, taken by inserting, freed on expiry.

A run takes a slot of ``job:<name>`` (and of ``pool:<name>``) before it
starts, and a task with ``pool=`` a slot of ``pool:<name>`` as ``<run
id>/<task key>`` while it runs; at most ``limit`` slots exist. Taking a
slot is an insert on the (scope, slot) key or a takeover of an expired
lease, so two daemons can never hand out one slot twice, on SQLite or
PostgreSQL, without any lock held across processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.storage.db import Database
from conveyor.storage.schema import leases

LEASE_TTL = 30.0


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(
        self,
        scope: str,
        holder: str,
        limit: int,
        ttl: float = LEASE_TTL,
        then: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Give ``holder`` a slot of ``scope`` if fewer than ``limit`` are held; True if so.

        ``then`` runs in the transaction that takes the slot (to mark a run
        started along with it); if it raises, the slot is not taken and the
        error propagates.
        """
        now = time.time()
        tried: set[int] = set()
        while True:
            try:
                with self.db.write() as conn:
                    taken = {
                        r.slot: r
                        for r in conn.execute(
                            select(leases.c.slot, leases.c.holder, leases.c.expires_at).where(
                                leases.c.scope == scope, leases.c.slot < limit
                            )
                        )
                    }
                    if not any(r.holder == holder for r in taken.values()):
                        free = [
                            slot
                            for slot in range(limit)
                            if slot not in tried
                            and (slot not in taken or taken[slot].expires_at < now)
                        ]
                        if not free:
                            return False
                        slot = free[0]
                        tried.add(slot)
                        if not self._take(conn, scope, slot, holder, taken.get(slot), now + ttl):
                            continue  # another holder took it over just now
                    if then is not None:
                        then(conn)
                    return True
            except IntegrityError:
                continue  # another holder took this slot just now: try the next

    @staticmethod
    def _take(
        conn: Connection, scope: str, slot: int, holder: str, row: Any, expires_at: float
    ) -> bool:
        """Insert a free slot, or take over an expired one (if it is still the same lease)."""
        if row is None:
            conn.execute(
                insert(leases).values(scope=scope, slot=slot, holder=holder, expires_at=expires_at)
            )
            return True
        res = conn.execute(
            update(leases)
            .where(
                leases.c.scope == scope,
                leases.c.slot == slot,
                leases.c.expires_at == row.expires_at,
            )
            .values(holder=holder, expires_at=expires_at)
        )
        return bool(res.rowcount == 1)

    def renew(self, holder: str, ttl: float = LEASE_TTL) -> None:
        """Push back the expiry of every slot ``holder`` and its tasks hold (its heartbeat)."""
        with self.db.write() as conn:
            conn.execute(
                update(leases).where(_held_by(holder)).values(expires_at=time.time() + ttl)
            )

    def release(self, holder: str) -> None:
        """Free every slot ``holder`` holds, with those its tasks (``holder/...``) hold."""
        with self.db.write() as conn:
            conn.execute(delete(leases).where(_held_by(holder)))

    def release_one(self, scope: str, holder: str) -> None:
        """Free ``holder``'s slot of ``scope`` only."""
        with self.db.write() as conn:
            conn.execute(delete(leases).where(leases.c.scope == scope, leases.c.holder == holder))

    def held(self, scope: str) -> list[str]:
        """The holders of unexpired slots of ``scope``."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(leases.c.holder).where(
                    and_(leases.c.scope == scope, leases.c.expires_at >= time.time())
                )
            ).all()
        return [r.holder for r in rows]


def _held_by(holder: str) -> ColumnElement[bool]:
    """Slots of ``holder`` itself and of its tasks, whose holder is ``<holder>/<task key>``."""
    return or_(leases.c.holder == holder, leases.c.holder.startswith(holder + "/", autoescape=True))
