"""Concurrency leases: numbered slots per scope, taken by inserting, freed with their run.

A run takes a slot of ``job:<name>`` (and of ``pool:<name>``) before it
starts, and a task with ``pool=`` a slot of ``pool:<name>`` as ``<run
id>/<task key>`` while it runs; at most ``limit`` slots exist. Taking a
slot is an insert on the (scope, slot) key or a takeover of a slot whose
run has ended, so two daemons can never hand out one slot twice, on SQLite
or PostgreSQL, without any lock held across processes.

A slot is never taken from a run that has begun and not ended, however long
its process has been silent: a paused, starved or cut-off run keeps its
slots until the judge of dead runs ends it (``scheduler.monitor``), so a
concurrency limit holds through pauses and outages. A slot of an ended run
is free at once. Only a slot whose run is still ``queued`` (its starter died
between taking two slots), or whose holder is no run, expires after ``ttl``
seconds by the database's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Float, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.storage.clock import db_now, now_in
from conveyor.storage.db import Database
from conveyor.storage.schema import leases, runs
from conveyor.storage.states import RUN_TERMINAL, RunStatus

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
        return self.acquire_all([(scope, limit)], holder, ttl, then)

    def acquire_all(
        self,
        scopes: list[tuple[str, int]],
        holder: str,
        ttl: float = LEASE_TTL,
        then: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Give ``holder`` a slot of every one of ``scopes`` (scope, limit), or none.

        All slots are taken in one transaction with ``then``: when one scope
        is full, nothing is taken and nothing needs giving back, so a starter
        that loses a race never frees a slot another starter holds.
        """
        tried: dict[str, set[int]] = {scope: set() for scope, _ in scopes}
        while True:
            try:
                with self.db.write() as conn:
                    # The expiry is the database's clock plus ``ttl``, computed there (no extra
                    # round trip): the statements add the clock to the ``ttl`` they are given.
                    for scope, limit in scopes:
                        self._take_one(conn, scope, limit, holder, ttl, tried[scope])
                    if then is not None:
                        then(conn)
                    return True
            except _Full:
                return False
            except (IntegrityError, _Raced):
                continue  # another holder took a slot just now: try again, past it

    def _take_one(
        self,
        conn: Connection,
        scope: str,
        limit: int,
        holder: str,
        ttl: float,
        tried: set[int],
    ) -> None:
        taken = {r.slot: r for r in conn.execute(_SLOTS, {"l_scope": scope, "l_limit": limit})}
        if any(r.holder == holder for r in taken.values()):
            return  # a holder keeps its slot
        ended = _ended_holders(conn, taken.values())
        free = [
            slot
            for slot in range(limit)
            if slot not in tried and (slot not in taken or taken[slot].holder in ended)
        ]
        if not free:
            raise _Full()
        slot = free[0]
        tried.add(slot)
        if not self._take(conn, scope, slot, holder, taken.get(slot), ttl):
            raise _Raced()

    @staticmethod
    def _take(conn: Connection, scope: str, slot: int, holder: str, row: Any, ttl: float) -> bool:
        """Insert a free slot, or take over an expired one (if it is still the same lease)."""
        params = {"l_scope": scope, "l_slot": slot, "l_holder": holder, "l_ttl": ttl}
        if row is None:
            conn.execute(_INSERT_SLOT, params)
            return True
        res = conn.execute(_TAKE_OVER_SLOT, {**params, "l_expires": row.expires_at})
        return bool(res.rowcount == 1)

    def release(self, holder: str) -> None:
        """Free every slot ``holder`` holds, with those its tasks (``holder/...``) hold."""
        with self.db.write() as conn:
            self.release_in(conn, holder)

    @staticmethod
    def release_in(conn: Connection, holder: str) -> None:
        """``release`` inside the caller's write transaction."""
        conn.execute(_RELEASE, {"l_holder": holder, "l_tasks": _prefix_pattern(holder + "/")})

    def release_one(self, scope: str, holder: str) -> None:
        """Free ``holder``'s slot of ``scope`` only."""
        with self.db.write() as conn:
            conn.execute(delete(leases).where(leases.c.scope == scope, leases.c.holder == holder))

    def held(self, scope: str) -> list[str]:
        """The holders of the slots of ``scope`` that are not free to take."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(leases.c.holder, leases.c.expires_at)
                .where(leases.c.scope == scope)
                .order_by(leases.c.slot)
            ).all()
            ended = _ended_holders(conn, rows)
        return [r.holder for r in rows if r.holder not in ended]


def _ended_holders(conn: Connection, rows: Iterable[Any]) -> set[str]:
    """Which of the holders in ``rows`` hold their slot for nothing: their run has ended,
    or is still queued (or is no run at all) past the slot's expiry."""
    rows = list(rows)
    if not rows:
        return set()
    run_ids = sorted({r.holder.split("/", 1)[0] for r in rows})
    status = {r.id: r.status for r in conn.execute(_STATUS_OF, {"l_ids": run_ids})}
    now: float | None = None  # the database's time, read only if an expiry matters
    out = set()
    for r in rows:
        st = status.get(r.holder.split("/", 1)[0])
        if st is not None and RunStatus(st) in RUN_TERMINAL:
            out.add(r.holder)
        elif st is None or st == RunStatus.QUEUED:
            now = now if now is not None else now_in(conn)
            if r.expires_at < now:
                out.add(r.holder)
    return out


def _prefix_pattern(prefix: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) for the strings that begin with ``prefix``."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# The statements of taking and freeing slots, built once: building a statement costs more
# than running it on SQLite, and a daemon takes and frees slots for every run it starts.
_SLOTS = select(leases.c.slot, leases.c.holder, leases.c.expires_at).where(
    leases.c.scope == bindparam("l_scope"), leases.c.slot < bindparam("l_limit")
)
_INSERT_SLOT = insert(leases).values(
    scope=bindparam("l_scope"),
    slot=bindparam("l_slot"),
    holder=bindparam("l_holder"),
    expires_at=db_now() + bindparam("l_ttl", type_=Float),
)
_TAKE_OVER_SLOT = (
    update(leases)
    .where(
        leases.c.scope == bindparam("l_scope"),
        leases.c.slot == bindparam("l_slot"),
        leases.c.expires_at == bindparam("l_expires"),
    )
    .values(holder=bindparam("l_holder"), expires_at=db_now() + bindparam("l_ttl", type_=Float))
)
# Slots of a holder itself and of its tasks, whose holder is ``<holder>/<task key>``.
_RELEASE = delete(leases).where(
    or_(
        leases.c.holder == bindparam("l_holder"),
        leases.c.holder.like(bindparam("l_tasks"), escape="\\"),
    )
)
_STATUS_OF = select(runs.c.id, runs.c.status).where(
    runs.c.id.in_(bindparam("l_ids", expanding=True))
)


class _Full(Exception):
    """A scope has no free slot: the transaction is rolled back, nothing taken."""


class _Raced(Exception):
    """Another holder took over the chosen slot first: try again."""
