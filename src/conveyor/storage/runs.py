"""The run store: create runs, move them through their states, find and list them."""

from __future__ import annotations

import builtins
import functools
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import (
    Connection,
    Float,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from conveyor.errors import ConfigError, InvalidTransitionError, LeaseLostError, NotFoundError
from conveyor.storage.clock import db_now, now_in
from conveyor.storage.db import Database
from conveyor.storage.hosts import ProcessRef, process_started, this_process
from conveyor.storage.records import RunRecord
from conveyor.storage.schema import leases, run_ends, runs
from conveyor.storage.states import RunStatus, check_run, run_sources

MIN_ID_PREFIX = 4
ENV_RUN_LEASE = "CONVEYOR_RUN_LEASE"
# Seconds of heartbeat silence, watched while the database answered, after which a run on
# another machine is dead. Long next to SQLite's 60 s lock wait and to GIL-bound tasks.
RUN_LEASE = 120.0
_NO_PROCESS = {"host": None, "pid": None, "pid_started": None}
# The statuses in which a run's process may write its records.
WRITING = (str(RunStatus.RUNNING), str(RunStatus.CANCELING))
# The statuses of a run that has a process (or should have one soon).
ACTIVE = (str(RunStatus.STARTING), *WRITING)
# The most ids in one ``IN (...)`` of a query.
IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run that reached a terminal status: ``id`` orders the ends (a database sequence)."""

    id: int
    run_id: str
    job_name: str
    status: RunStatus
    at: float


def new_run_id() -> str:
    return uuid.uuid4().hex


class NewRun(TypedDict, total=False):
    """The fields of a new run: ``job_name`` and ``job_version`` are required."""

    job_name: Required[str]
    job_version: Required[str]
    tags: Mapping[str, str] | None
    run_config: Mapping[str, Any] | None
    selection: Sequence[str] | None
    trigger: str
    origin: Mapping[str, Any] | None
    parent_run_id: str | None
    root_run_id: str | None
    # [start, end) in epoch seconds
    interval: tuple[float, float] | None
    partition: str | None
    # Who or what started the run: a user ("alice"), a token ("alice (token 83e5…)"),
    # "local:<OS user>", or the trigger kind ("schedule", "chain", "sensor", ...).
    launched_by: str | None
    # The deployed version whose code the run runs, and the environment it runs in.
    deployed_version: int | None
    environment: str | None


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def new_row(
        rid: str, *, status: RunStatus, now: float, **fields: Unpack[NewRun]
    ) -> dict[str, Any]:
        """The row of a new run, in its first status (checked against the table)."""
        check_run(None, status, rid)
        tags, run_config = fields.get("tags"), fields.get("run_config")
        selection, origin = fields.get("selection"), fields.get("origin")
        interval = fields.get("interval")
        return {
            "id": rid,
            "job_name": fields["job_name"],
            "job_version": fields["job_version"],
            "status": str(status),
            "created_at": now,
            "started_at": None,
            "ended_at": None,
            "updated_at": now,
            "tags": dict(tags or {}),
            "run_config": dict(run_config or {}),
            "selection": list(selection) if selection is not None else None,
            "trigger": fields.get("trigger", "manual"),
            "origin": dict(origin) if origin is not None else None,
            "parent_run_id": fields.get("parent_run_id"),
            "root_run_id": fields.get("root_run_id"),
            "error": None,
            "heartbeat_at": None,
            "interval_start": interval[0] if interval else None,
            "interval_end": interval[1] if interval else None,
            "partition_key": fields.get("partition"),
            "launched_by": _launched_by(fields.get("launched_by")),
            "deployed_version": fields.get("deployed_version"),
            "environment": fields.get("environment"),
            # A run created to start at once is started once: its first token.
            "token": 0 if status is RunStatus.QUEUED else 1,
            **(_NO_PROCESS if status is RunStatus.QUEUED else this_process().columns()),
        }

    def create(
        self,
        *,
        status: RunStatus = RunStatus.STARTING,
        run_id: str | None = None,
        then: RunStatus | None = None,
        **fields: Unpack[NewRun],
    ) -> RunRecord:
        """Insert a new run in its first status (``queued`` or ``starting``).

        ``fields`` are the run's (``NewRun``). With ``then``, the run also
        moves on to that status in the same transaction (an in-process run is
        created ``starting`` and is ``running`` at once).
        """
        rid = run_id or new_run_id()
        now = time.time()
        row = self.new_row(rid, status=status, now=now, **fields)
        with self.db.write() as conn:
            conn.execute(runs.insert(), row)
            if then is not None:
                self.set_status_in(conn, rid, then, at=now)
                row.update(status=str(then), updated_at=now)
                if then is RunStatus.RUNNING:
                    row["started_at"] = now
        return RunRecord.from_row(row)

    def set_status(
        self,
        run_id: str,
        to: RunStatus,
        *,
        error: str | None = None,
        at: float | None = None,
        token: int | None = None,
    ) -> None:
        """Move a run to ``to``; raises ``InvalidTransitionError`` if the table forbids it.

        With ``token`` (the run's process writing), the change is refused with
        ``LeaseLostError`` unless the run still has that fencing token.
        """
        with self.db.write() as conn:
            self.set_status_in(conn, run_id, to, error=error, at=at, token=token)

    @staticmethod
    def set_status_in(
        conn: Connection,
        run_id: str,
        to: RunStatus,
        *,
        error: str | None = None,
        at: float | None = None,
        token: int | None = None,
    ) -> None:
        """``set_status`` inside the caller's write transaction.

        Marking a run ``starting`` begins a new start: its token grows by one
        and the calling process becomes responsible for it.
        """
        now = at if at is not None else time.time()
        params: dict[str, Any] = {"s_id": run_id, "s_status": str(to), "s_now": now}
        if to is RunStatus.STARTING:
            params.update({f"s_{k}": v for k, v in this_process().columns().items()})
        if error is not None:
            params["s_error"] = error
        if token is not None:
            params["s_token"] = token
        res = conn.execute(_set_status_stmt(to, error is not None, token is not None), params)
        if res.rowcount == 1:
            if to.is_terminal:
                RunStore.note_end_in(conn, run_id, to, now)
            return
        row = conn.execute(select(runs.c.status, runs.c.token).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}")
        if token is not None and (row.token != token or str(row.status) not in WRITING):
            raise LeaseLostError(_lost(run_id, token, row.token, row.status))
        check_run(RunStatus(row.status), to, run_id)

    def claim(self, run_id: str, token: int) -> RunRecord:
        """Start of ``token``'s run worker: the run goes from ``starting`` to ``running``, with
        this process responsible for it. ``LeaseLostError`` if the start is no longer
        ``token``'s (it was put back in the queue, canceled, or started again)."""
        now = time.time()
        with self.db.write() as conn:
            res = conn.execute(
                update(runs)
                .where(*_start_of(run_id, token))
                .values(
                    status=str(RunStatus.RUNNING),
                    started_at=now,
                    updated_at=now,
                    heartbeat_at=db_now(),
                    **this_process().columns(),
                )
            )
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}")
        if res.rowcount != 1:
            raise LeaseLostError(
                f"run {run_id}: start {token} is not the run's to begin (it is {row.status}, "
                f"start {row.token})"
            )
        return RunRecord.from_row(row)

    def hand_over(self, run_id: str, pid: int) -> None:
        """Make process ``pid`` (on this host) responsible for a run this process is starting,
        so that the starter may exit before the run's worker begins it."""
        me = this_process()
        ref = ProcessRef(me.host, pid, process_started(pid) or 0.0)
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(
                    runs.c.id == run_id,
                    runs.c.status == str(RunStatus.STARTING),
                    runs.c.host == me.host,
                    runs.c.pid == me.pid,
                )
                .values(**ref.columns())
            )

    def reassign(self, run_id: str, pid: int) -> bool:
        """Make process ``pid`` (on this host) responsible for a run that is running or
        being canceled: a supervisor about to stop the process that served it takes it
        back, so that the run is not judged dead before the supervisor ends it."""
        ref = ProcessRef(this_process().host, pid, process_started(pid) or 0.0)
        with self.db.write() as conn:
            res = conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(WRITING))
                .values(**ref.columns())
            )
        return bool(res.rowcount == 1)

    def adopt(self, run_id: str, token: int) -> bool:
        """Make this process (a run worker, before it claims the run) responsible for start
        ``token``, so that if it dies before its claim the start is put back in the queue
        at once rather than after the start timeout. False if the start is not there."""
        with self.db.write() as conn:
            res = conn.execute(
                update(runs).where(*_start_of(run_id, token)).values(**this_process().columns())
            )
        return bool(res.rowcount == 1)

    @staticmethod
    def guard(conn: Connection, run_id: str, token: int) -> int:
        """Inside a write transaction of the run's process: refuse (``LeaseLostError``) unless
        the run is still ``token``'s and may be written. The row stays locked to the end of
        the transaction, so no judge can take the run away half-way through a write.
        Returns how many of the run's record batches are written (``count_batch``)."""
        row = conn.execute(
            select(runs.c.status, runs.c.token, runs.c.batches)
            .where(runs.c.id == run_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}")
        if row.token != token or str(row.status) not in WRITING:
            raise LeaseLostError(_lost(run_id, token, row.token, row.status))
        return int(row.batches)

    @staticmethod
    def count_batch_if_ours(
        conn: Connection,
        run_id: str,
        token: int,
        seq: int,
        status: str | None = None,
        error: str | None = None,
    ) -> bool:
        """The common case of writing batch ``seq`` in one statement: count it (and make
        ``status`` the run's, if given) if the run is still ``token``'s, may be written and
        has not counted it yet. False otherwise, with nothing changed: the caller then
        finds out why (``guard``, ``batches_written``)."""
        now = time.time()
        to = None if status is None else RunStatus(status)
        params: dict[str, Any] = {"b_id": run_id, "b_token": token, "b_seq": seq}
        if to is not None:
            params.update(v_status=str(to), v_now=now, v_error=error)
        res = conn.execute(_count_batch_stmt(to, error is not None), params)
        if res.rowcount != 1:
            return False
        if to is not None and to.is_terminal:
            RunStore.note_end_in(conn, run_id, to, now)
        return True

    @staticmethod
    def batches_written(conn: Connection, run_id: str) -> int:
        """How many of the run's record batches are written, its row locked meanwhile."""
        q = select(runs.c.batches).where(runs.c.id == run_id).with_for_update()
        value = conn.execute(q).scalar()
        if value is None:
            raise NotFoundError(f"no run {run_id!r}")
        return int(value)

    @staticmethod
    def count_batch(conn: Connection, run_id: str, seq: int) -> None:
        """Note, in the transaction that writes it, that batch ``seq`` of the run is written."""
        conn.execute(update(runs).where(runs.c.id == run_id).values(batches=seq))

    def heartbeat(self, run_id: str, token: int | None = None) -> RunStatus:
        """Note that the run's process is alive (by the database's clock), and return the
        run's status. With ``token``, ``LeaseLostError`` if the run is no longer its."""
        where = [runs.c.id == run_id]
        if token is not None:
            where += [runs.c.token == token, runs.c.status.in_(WRITING)]
        with self.db.write() as conn:
            res = conn.execute(update(runs).where(*where).values(heartbeat_at=db_now()))
            row = conn.execute(
                select(runs.c.status, runs.c.token).where(runs.c.id == run_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}")
        if token is not None and res.rowcount != 1:
            raise LeaseLostError(_lost(run_id, token, row.token, row.status))
        return RunStatus(row.status)

    def requeue(self, run_id: str, token: int) -> bool:
        """Put start ``token`` of a run back in the queue (its worker never came), freeing its
        slots in the same transaction. False if the run moved on meanwhile."""
        with self.db.write() as conn:
            res = conn.execute(
                update(runs)
                .where(*_start_of(run_id, token))
                .values(
                    status=str(RunStatus.QUEUED),
                    updated_at=time.time(),
                    host=None,
                    pid=None,
                    pid_started=None,
                )
            )
            if res.rowcount != 1:
                return False
            conn.execute(
                delete(leases).where(
                    or_(
                        leases.c.holder == run_id,
                        leases.c.holder.startswith(run_id + "/", autoescape=True),
                    )
                )
            )
        return True

    def request_cancel(self, run_id: str) -> RunStatus:
        """Ask a run to stop: a queued run is canceled at once, a started one goes to
        ``canceling`` and its process stops it. Returns the status it is now in."""
        for _ in range(3):
            current = self.get(run_id).status
            if current.is_terminal or current is RunStatus.CANCELING:
                return current
            # A run not yet running has no process to stop it: it ends at once (a worker
            # that comes for it later finds it canceled and does nothing).
            waiting = current in (RunStatus.QUEUED, RunStatus.STARTING)
            to = RunStatus.CANCELED if waiting else RunStatus.CANCELING
            try:
                self.set_status(run_id, to, error="canceled on request")
                return to
            except InvalidTransitionError:
                continue  # it moved on meanwhile: look again
        return self.get(run_id).status

    def get(self, run_id: str) -> RunRecord:
        with self.db.read() as conn:
            return self.get_in(conn, run_id)

    @staticmethod
    def get_in(conn: Connection, run_id: str, *, lock: bool = False) -> RunRecord:
        """``get`` inside the caller's transaction; with ``lock``, the row stays locked to its
        end (take the run's row before its tasks' rows, as the run's own writes do)."""
        q = select(runs).where(runs.c.id == run_id)
        row = conn.execute(q.with_for_update() if lock else q).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}; list runs with `conveyor runs list`")
        return RunRecord.from_row(row)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix``."""
        prefix = prefix.strip().lower()
        if len(prefix) == 32:
            return prefix
        if len(prefix) < MIN_ID_PREFIX or not all(c in "0123456789abcdef" for c in prefix):
            raise ConfigError(
                f"run id {prefix!r}: give the full id or at least its first {MIN_ID_PREFIX} "
                f"hex characters"
            )
        with self.db.read() as conn:
            ids = (
                conn.execute(select(runs.c.id).where(runs.c.id.like(prefix + "%")).limit(2))
                .scalars()
                .all()
            )
        if not ids:
            raise NotFoundError(f"no run id starts with {prefix!r}")
        if len(ids) > 1:
            raise ConfigError(f"run id {prefix!r} is ambiguous; give more characters")
        return str(ids[0])

    def list(
        self,
        *,
        job_name: str | None = None,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        limit: int = 20,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, optionally of one job and status; ``before`` is a cursor."""
        if limit < 1:
            raise ConfigError(f"limit={limit}: must be at least 1")
        q = select(runs)
        if job_name is not None:
            q = q.where(runs.c.job_name == job_name)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            try:
                q = q.where(runs.c.status.in_([str(RunStatus(s)) for s in statuses]))
            except ValueError:
                raise ConfigError(
                    f"status {status!r}: must be one of {', '.join(s.value for s in RunStatus)}"
                ) from None
        if before is not None:
            ts, rid = before
            q = q.where(or_(runs.c.created_at < ts, and_(runs.c.created_at == ts, runs.c.id < rid)))
        q = q.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(q)]

    def children(self, run: RunRecord, limit: int = 100) -> builtins.list[RunRecord]:
        """The runs whose parent is ``run`` (its reruns and retries), oldest first.

        They share its root, so the root's index finds them among its family.
        """
        root = run.root_run_id or run.id
        with self.db.read() as conn:
            rows = conn.execute(
                select(runs)
                .where(runs.c.root_run_id == root, runs.c.parent_run_id == run.id)
                .order_by(runs.c.created_at, runs.c.id)
                .limit(limit)
            ).all()
        return [RunRecord.from_row(r) for r in rows]

    def add_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Add ``tags`` to a run's tags."""
        with self.db.write() as conn:
            # Locked: two concurrent callers must not overwrite each other's tags.
            current = conn.execute(
                select(runs.c.tags).where(runs.c.id == run_id).with_for_update()
            ).scalar()
            if current is None:
                raise NotFoundError(f"no run {run_id!r}")
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(tags={**current, **tags}, updated_at=time.time())
            )

    def last_interval_end(self, job_name: str) -> float | None:
        """Where the newest successful run of ``job_name`` with an interval ended."""
        return self._newest_success(job_name, runs.c.interval_end)

    def last_success_end(self, job_name: str) -> float | None:
        """When the newest successful run of ``job_name`` ended."""
        return self._newest_success(job_name, runs.c.ended_at)

    def last_pending_interval_end(self, job_name: str) -> float | None:
        """Where the newest interval of a queued, starting or running run of ``job_name``
        ends (on the status index: a job has few such runs)."""
        pending = [str(s) for s in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)]
        q = select(func.max(runs.c.interval_end)).where(
            runs.c.status.in_(pending), runs.c.job_name == job_name
        )
        with self.db.read() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else float(value)

    def success_interval_ends_since(self, since: float) -> builtins.list[tuple[str, float]]:
        """(job name, interval end) of the successful runs with an interval that ended at
        or after ``since`` (epoch seconds)."""
        q = select(runs.c.job_name, runs.c.interval_end).where(
            runs.c.ended_at >= since,
            runs.c.status == str(RunStatus.SUCCESS),
            runs.c.interval_end.is_not(None),
        )
        with self.db.read() as conn:
            return [(str(n), float(e)) for n, e in conn.execute(q)]

    def _newest_success(self, job_name: str, column: Any) -> float | None:
        with self.db.read() as conn:
            value = conn.execute(_newest_success_stmt(column.name), {"n_job": job_name}).scalar()
        return None if value is None else float(value)

    def success_intervals(
        self, job_name: str, start: float, end: float
    ) -> builtins.list[tuple[float, float]]:
        """The intervals of successful runs of ``job_name`` that overlap ``[start, end)``."""
        q = select(runs.c.interval_start, runs.c.interval_end).where(
            runs.c.job_name == job_name,
            runs.c.status == str(RunStatus.SUCCESS),
            runs.c.interval_start < end,
            runs.c.interval_end > start,
        )
        with self.db.read() as conn:
            return [(float(a), float(b)) for a, b in conn.execute(q)]

    def completed_interval_starts(
        self, job_name: str, starts: Sequence[float], partition: str | None = None
    ) -> set[float]:
        """Which of ``starts`` already begin a successful run's interval (of ``partition``)."""
        if not starts:
            return set()
        q = select(runs.c.interval_start).where(
            runs.c.job_name == job_name,
            runs.c.status == str(RunStatus.SUCCESS),
            runs.c.interval_start.in_(list(starts)),
        )
        if partition is not None:
            q = q.where(runs.c.partition_key == partition)
        with self.db.read() as conn:
            return {float(v) for v in conn.execute(q).scalars()}

    def interval_runs(
        self, job_name: str, start: float, statuses: Sequence[RunStatus] | None = None
    ) -> builtins.list[RunRecord]:
        """The runs of ``job_name`` whose interval begins at ``start`` (in ``statuses``)."""
        q = select(runs).where(runs.c.job_name == job_name, runs.c.interval_start == start)
        if statuses is not None:
            q = q.where(runs.c.status.in_([str(s) for s in statuses]))
        with self.db.read() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(q)]

    def completed_partitions(self, job_name: str, keys: Sequence[str]) -> set[str]:
        """Which of the partition ``keys`` of ``job_name`` have a successful run."""
        if not keys:
            return set()
        q = (
            select(runs.c.partition_key)
            .where(
                runs.c.job_name == job_name,
                runs.c.status == str(RunStatus.SUCCESS),
                runs.c.partition_key.in_(list(keys)),
            )
            .distinct()
        )
        with self.db.read() as conn:
            return {str(v) for v in conn.execute(q).scalars()}

    @staticmethod
    def note_end_in(conn: Connection, run_id: str, status: RunStatus, at: float) -> None:
        """Add the run's end to ``run_ends``, in the transaction of its terminal status change."""
        conn.execute(_NOTE_END, {"e_id": run_id, "e_status": str(status), "e_at": at})

    def ends_after(self, after: int, limit: int) -> builtins.list[RunEnd]:
        """The run ends with an id above ``after``, oldest first, at most ``limit``."""
        with self.db.read() as conn:
            return [
                _end(r) for r in conn.execute(_ENDS_AFTER, {"e_after": after, "e_limit": limit})
            ]

    def ends_among(self, ids: Iterable[int]) -> builtins.list[RunEnd]:
        """The run ends of ``ids`` that are there (committed), oldest first."""
        found: builtins.list[RunEnd] = []
        wanted = sorted(ids)
        with self.db.read() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                q = select(run_ends).where(run_ends.c.id.in_(wanted[i : i + IN_CHUNK]))
                found += [_end(r) for r in conn.execute(q)]
        return sorted(found, key=lambda e: e.id)

    def last_end_id(self, before: float | None = None) -> int:
        """The newest run end's id (of those ended before ``before``, epoch seconds); 0 if
        there is none."""
        q = select(func.max(run_ends.c.id))
        if before is not None:
            q = q.where(run_ends.c.at < before)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar() or 0)

    def get_many(self, ids: Iterable[str], *, ended: bool = False) -> dict[str, RunRecord]:
        """The runs of ``ids`` that exist (that have ended, with ``ended``), by id."""
        wanted = sorted(set(ids))
        found: dict[str, RunRecord] = {}
        with self.db.read() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                q = select(runs).where(runs.c.id.in_(wanted[i : i + IN_CHUNK]))
                if ended:
                    q = q.where(runs.c.ended_at.is_not(None))
                found.update((r.id, RunRecord.from_row(r)) for r in conn.execute(q))
        return found

    def ended_among(self, ids: Iterable[str]) -> builtins.list[RunRecord]:
        """The runs of ``ids`` that have ended."""
        return builtins.list(self.get_many(ids, ended=True).values())

    def oldest_queued_per_job(
        self, job_names: Iterable[str], limit: int
    ) -> dict[str, builtins.list[RunRecord]]:
        """The oldest ``limit`` queued runs of each of ``job_names`` that has any, oldest
        first: one query, however many jobs wait (a window per job over the queued runs of
        every job, so that the statement is built once, whatever the names)."""
        names = set(job_names)
        found: dict[str, builtins.list[RunRecord]] = {}
        with self.db.read() as conn:
            for row in conn.execute(_OLDEST_QUEUED, {"q_limit": limit}):
                if row.job_name in names:
                    found.setdefault(row.job_name, []).append(RunRecord.from_row(row))
        return found

    def oldest_queued(self, job_name: str, limit: int) -> builtins.list[RunRecord]:
        """The oldest ``limit`` queued runs of ``job_name``, oldest first (their ``cursor``)."""
        q = (
            select(runs)
            .where(runs.c.status == str(RunStatus.QUEUED), runs.c.job_name == job_name)
            .order_by(runs.c.created_at, runs.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(q)]

    def running(self, job_names: Iterable[str]) -> builtins.list[RunRecord]:
        """Every running run of ``job_names``, however many."""
        names = sorted(set(job_names))
        found: builtins.list[RunRecord] = []
        with self.db.read() as conn:
            for i in range(0, len(names), IN_CHUNK):
                q = select(runs).where(
                    runs.c.status == str(RunStatus.RUNNING),
                    runs.c.job_name.in_(names[i : i + IN_CHUNK]),
                )
                found += [RunRecord.from_row(r) for r in conn.execute(q)]
        return found

    def active(self) -> tuple[float, builtins.list[Any]]:
        """The database's time, and the id, job, status, token, process and heartbeat of
        every run starting, running or canceling, read in one transaction (for the judge
        of dead runs, ``scheduler.monitor``)."""
        with self.db.read() as conn:
            return now_in(conn), builtins.list(conn.execute(_ACTIVE).all())

    def count_queued_before(self, job_name: str, cursor: tuple[float, str]) -> int:
        """How many queued runs of ``job_name`` are older than the run at ``cursor``."""
        created, rid = cursor
        older = or_(
            runs.c.created_at < created, and_(runs.c.created_at == created, runs.c.id < rid)
        )
        q = (
            select(func.count())
            .select_from(runs)
            .where(runs.c.job_name == job_name, runs.c.status == str(RunStatus.QUEUED), older)
        )
        with self.db.read() as conn:
            return int(conn.execute(q).scalar() or 0)

    def count(self, *, job_name: str | None = None) -> int:
        q = select(func.count()).select_from(runs)
        if job_name is not None:
            q = q.where(runs.c.job_name == job_name)
        with self.db.read() as conn:
            return int(conn.execute(q).scalar_one())


def _end(row: Any) -> RunEnd:
    return RunEnd(int(row.id), row.run_id, row.job_name, RunStatus(row.status), float(row.at))


def _lost(run_id: str, token: int, current: int, status: str) -> str:
    if current != token:
        why = f"it was started again since (start {current})"
    else:
        why = f"it is {status} now"
    return (
        f"run {run_id} is no longer this process's to write (start {token}): {why}. The run "
        f"was judged dead or handed to another worker while this process could not answer"
    )


def run_lease() -> float:
    """The run lease in seconds, from ``CONVEYOR_RUN_LEASE`` if set (see
    ``scheduler.monitor``)."""
    raw = os.environ.get(ENV_RUN_LEASE)
    if not raw:
        return RUN_LEASE
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(
            f"{ENV_RUN_LEASE}={raw!r}: give the seconds of heartbeat silence after which a run "
            f"on another machine is dead, e.g. {ENV_RUN_LEASE}=120"
        )
    return value


# The statements of a run's every batch and end, built once: building a statement costs
# more than running it on SQLite, and these run at the end of every run.
_NOTE_END = insert(run_ends).from_select(
    (run_ends.c.run_id, run_ends.c.job_name, run_ends.c.status, run_ends.c.at),
    select(
        runs.c.id,
        runs.c.job_name,
        bindparam("e_status", type_=String),
        bindparam("e_at", type_=Float),
    ).where(runs.c.id == bindparam("e_id")),
)


@functools.cache
def _count_batch_stmt(to: RunStatus | None, with_error: bool) -> Any:
    """``RunStore.count_batch_if_ours``'s statement, for a batch that moves the run to ``to``
    (or leaves its status alone)."""
    values: dict[str, Any] = {"batches": bindparam("b_seq")}
    sources: tuple[str, ...] = WRITING
    if to is not None:
        values.update(status=bindparam("v_status"), updated_at=bindparam("v_now"))
        if to.is_terminal:
            values["ended_at"] = bindparam("v_now")
        if with_error:
            values["error"] = bindparam("v_error")
        sources = tuple(s for s in WRITING if RunStatus(s) in run_sources(to))
    return (
        update(runs)
        .where(
            runs.c.id == bindparam("b_id"),
            runs.c.token == bindparam("b_token"),
            runs.c.status.in_(sources),
            runs.c.batches < bindparam("b_seq"),
        )
        .values(values)
    )


@functools.cache
def _set_status_stmt(to: RunStatus, with_error: bool, with_token: bool) -> Any:
    """``RunStore.set_status_in``'s statement for a move to ``to``, built once."""
    values: dict[str, Any] = {"status": bindparam("s_status"), "updated_at": bindparam("s_now")}
    if to is RunStatus.RUNNING:
        values["started_at"] = bindparam("s_now")
    if to is RunStatus.STARTING:
        values.update(
            token=runs.c.token + 1,
            heartbeat_at=None,
            **{k: bindparam(f"s_{k}") for k in _NO_PROCESS},
        )
    if to.is_terminal:
        values["ended_at"] = bindparam("s_now")
    if with_error:
        values["error"] = bindparam("s_error")
    where = [runs.c.id == bindparam("s_id"), runs.c.status.in_([str(s) for s in run_sources(to)])]
    if with_token:
        where.append(runs.c.token == bindparam("s_token"))
    return update(runs).where(*where).values(values)


def _oldest_queued() -> Any:
    rank = (
        func.row_number()
        .over(partition_by=runs.c.job_name, order_by=(runs.c.created_at, runs.c.id))
        .label("rank_in_job")
    )
    ranked = select(runs, rank).where(runs.c.status == str(RunStatus.QUEUED)).subquery()
    return (
        select(ranked)
        .where(ranked.c.rank_in_job <= bindparam("q_limit"))
        .order_by(ranked.c.created_at, ranked.c.id)
    )


@functools.cache
def _newest_success_stmt(column_name: str) -> Any:
    # Newest first on the (job_name, column) index: the first success ends the scan.
    column = runs.c[column_name]
    return (
        select(column)
        .where(
            runs.c.job_name == bindparam("n_job"),
            runs.c.status == str(RunStatus.SUCCESS),
            column.is_not(None),
        )
        .order_by(column.desc())
        .limit(1)
    )


# The queries of every daemon pass, built once.
_ENDS_AFTER = (
    select(run_ends)
    .where(run_ends.c.id > bindparam("e_after"))
    .order_by(run_ends.c.id)
    .limit(bindparam("e_limit"))
)
_OLDEST_QUEUED = _oldest_queued()
_ACTIVE = select(
    runs.c.id,
    runs.c.job_name,
    runs.c.status,
    runs.c.token,
    runs.c.host,
    runs.c.pid,
    runs.c.pid_started,
    runs.c.heartbeat_at,
).where(runs.c.status.in_(ACTIVE))


def _start_of(run_id: str, token: int) -> tuple[Any, ...]:
    """The WHERE of a write to start ``token`` of a run while it is still starting
    (``claim``, ``adopt``, ``requeue``)."""
    return (
        runs.c.id == run_id,
        runs.c.token == token,
        runs.c.status == str(RunStatus.STARTING),
    )


def local_launcher() -> str:
    """``launched_by`` of a run started on this machine outside the server:
    ``local:<OS user>``."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name: no USER variable and no passwd entry
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"local:{user}"


def _launched_by(value: str | None) -> str | None:
    """``launched_by`` as stored: stripped, cut to its column's 255 characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"launched_by must be a string naming who started the run, got {value!r}")
    return value.strip()[:255] or None
