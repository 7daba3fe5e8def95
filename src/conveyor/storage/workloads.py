"""Long-running workloads as recorded: what the code declares, what a person asked
for, and what the supervisor that owns each one last saw.

One supervisor owns a workload at a time: it holds the row's lease (``owner``,
``lease_expires_at`` by the database's clock) and writes with the row's fencing
``token``, which grows with each takeover, so a supervisor that lost the lease
cannot write (``update`` returns False).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Float, Row, and_, bindparam, delete, or_, select, update

from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.clock import db_now
from conveyor.storage.db import Database
from conveyor.storage.schema import workloads
from conveyor.storage.upsert import insert_or_update

WorkloadKind = Literal["service", "app", "interactive", "addin"]
KINDS: tuple[str, ...] = ("service", "app", "interactive", "addin")
Desired = Literal["running", "stopped"]
# How long a supervisor's claim on a workload lasts unless renewed (seconds).
WORKLOAD_LEASE = 15.0
STATES = (
    "stopped",
    "starting",
    "running",
    "unhealthy",
    "backoff",
    "crash_loop",
    "idle",
    "stopping",
)
# What the supervisor may write with ``update``.
STATE_FIELDS = frozenset(
    {
        "state",
        "host",
        "pid",
        "pid_started",
        "port",
        "started_at",
        "restarts",
        "next_start_at",
        "last_exit_code",
        "last_error",
        "health",
        "last_request_at",
        "run_id",
    }
)


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    name: str
    kind: str
    spec: dict[str, Any]
    desired: str
    state: str
    owner: str | None
    lease_expires_at: float | None
    token: int
    host: str | None
    pid: int | None
    pid_started: float | None
    port: int | None
    started_at: float | None
    restarts: int
    next_start_at: float | None
    last_exit_code: int | None
    last_error: str | None
    health: str | None
    last_request_at: float | None
    run_id: str | None
    updated_at: float


class WorkloadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def register(
        self, name: str, kind: str, spec: Mapping[str, Any], *, desired: Desired = "running"
    ) -> WorkloadRecord:
        """Record workload ``name`` as the code declares it; a known one keeps its state
        and what a person asked for, and takes the new ``spec``."""
        if kind not in KINDS:
            raise ConfigError(f"workload {name!r}: kind {kind!r} must be one of {', '.join(KINDS)}")
        if desired not in ("running", "stopped"):
            raise ConfigError(f"workload {name!r}: desired {desired!r} must be running or stopped")
        values = {
            "name": name,
            "kind": kind,
            "spec": dict(spec),
            "desired": desired,
            "state": "stopped",
            "restarts": 0,
            "token": 0,
            "updated_at": time.time(),
        }
        with self.db.write() as conn:
            conn.execute(insert_or_update(conn, workloads, ["name"], ["kind", "spec"]), values)
        record = self.get(name)
        assert record is not None
        return record

    def get(self, name: str) -> WorkloadRecord | None:
        with self.db.read() as conn:
            row = conn.execute(select(workloads).where(workloads.c.name == name)).first()
        return _record(row) if row is not None else None

    def require(self, name: str) -> WorkloadRecord:
        record = self.get(name)
        if record is None:
            raise NotFoundError(f"no workload {name!r}; list them with `conveyor services list`")
        return record

    def all(self) -> list[WorkloadRecord]:
        with self.db.read() as conn:
            rows = conn.execute(select(workloads).order_by(workloads.c.name)).all()
        return [_record(r) for r in rows]

    def set_desired(self, name: str, desired: Desired) -> WorkloadRecord:
        """Ask for the workload to run or stop; its supervisor acts on it."""
        if desired not in ("running", "stopped"):
            raise ConfigError(f"desired {desired!r} must be running or stopped")
        with self.db.write() as conn:
            done = conn.execute(
                update(workloads)
                .where(workloads.c.name == name)
                .values(desired=desired, updated_at=time.time())
            ).rowcount
        if not done:
            raise NotFoundError(f"no workload {name!r}; list them with `conveyor services list`")
        return self.require(name)

    def update(self, name: str, token: int, **fields: Any) -> bool:
        """Write what the supervisor holding lease ``token`` saw; False if it lost it."""
        unknown = set(fields) - STATE_FIELDS
        if unknown:
            raise ValueError(f"not workload state fields: {sorted(unknown)}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"workload state {fields['state']!r} must be one of {STATES}")
        with self.db.write() as conn:
            done = conn.execute(
                update(workloads)
                .where(workloads.c.name == name, workloads.c.token == token)
                .values(**fields, updated_at=time.time())
            ).rowcount
        return bool(done)

    def claim(
        self,
        name: str,
        owner: str,
        ttl: float = WORKLOAD_LEASE,
        *,
        take_from: str | None = None,
    ) -> int | None:
        """Make ``owner`` the workload's supervisor if it has none, or its lease ran out
        by the database's clock, or its supervisor is ``take_from`` (which the caller
        knows is dead); return the new fencing token, or None if another supervisor
        holds it (or there is no such workload)."""
        params = {"w_name": name, "w_owner": owner, "w_ttl": ttl, "w_dead": take_from or ""}
        with self.db.write() as conn:
            taken = conn.execute(_CLAIM, params)
            if taken.rowcount != 1:
                return None
            token = conn.execute(
                select(workloads.c.token).where(workloads.c.name == name)
            ).scalar_one()
        return int(token)

    def renew(self, name: str, owner: str, token: int, ttl: float = WORKLOAD_LEASE) -> bool:
        """Extend ``owner``'s lease by ``ttl`` seconds from now; False if it lost it."""
        with self.db.write() as conn:
            done = conn.execute(
                _RENEW, {"w_name": name, "w_owner": owner, "w_token": token, "w_ttl": ttl}
            ).rowcount
        return bool(done)

    def release(self, name: str, owner: str, token: int) -> bool:
        """Give up the lease (the next supervisor may claim it at once); False if it
        was no longer ``owner``'s."""
        with self.db.write() as conn:
            done = conn.execute(
                update(workloads)
                .where(
                    workloads.c.name == name,
                    workloads.c.owner == owner,
                    workloads.c.token == token,
                )
                .values(owner=None, lease_expires_at=None)
            ).rowcount
        return bool(done)

    def remove(self, name: str) -> bool:
        """Forget the workload (its code no longer declares it, and it is stopped)."""
        with self.db.write() as conn:
            return bool(conn.execute(delete(workloads).where(workloads.c.name == name)).rowcount)


def _record(r: Row[Any]) -> WorkloadRecord:
    return WorkloadRecord(
        name=r.name,
        kind=r.kind,
        spec=dict(r.spec or {}),
        desired=r.desired,
        state=r.state,
        owner=r.owner,
        lease_expires_at=r.lease_expires_at,
        token=int(r.token),
        host=r.host,
        pid=r.pid,
        pid_started=r.pid_started,
        port=r.port,
        started_at=r.started_at,
        restarts=int(r.restarts),
        next_start_at=r.next_start_at,
        last_exit_code=r.last_exit_code,
        last_error=r.last_error,
        health=r.health,
        last_request_at=r.last_request_at,
        run_id=r.run_id,
        updated_at=float(r.updated_at),
    )


# The lease statements, with the database's clock (storage.clock) for now and expiry.
_CLAIM = (
    update(workloads)
    .where(
        workloads.c.name == bindparam("w_name"),
        or_(
            workloads.c.owner.is_(None),
            workloads.c.lease_expires_at.is_(None),
            workloads.c.lease_expires_at < db_now(),
            workloads.c.owner == bindparam("w_dead"),
        ),
    )
    .values(
        owner=bindparam("w_owner"),
        lease_expires_at=db_now() + bindparam("w_ttl", type_=Float),
        token=workloads.c.token + 1,
    )
)
_RENEW = (
    update(workloads)
    .where(
        and_(
            workloads.c.name == bindparam("w_name"),
            workloads.c.owner == bindparam("w_owner"),
            workloads.c.token == bindparam("w_token"),
        )
    )
    .values(lease_expires_at=db_now() + bindparam("w_ttl", type_=Float))
)
