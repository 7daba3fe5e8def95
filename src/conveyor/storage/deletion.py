"""Deleting ended runs with everything recorded for them, to take back space.

A run leaves rows in several tables (its tasks' attempts, events, log and
result pointers, its end in ``run_ends``) and files beside the database:
blobs too large to keep in a row, its run worker's log and, rarely, a
journal it could not write. Deleting it means all of them, or ``results/``
grows without bound; so this is one module, used by ``conveyor runs
delete``, ``Instance.delete_runs`` and the daemon's retention
(``scheduler.retention``).

Only ended runs are deleted: every statement is guarded by the run's status,
so a run that is queued, starting or running stays, whatever the caller
checked before. A rerun's reused results point at its parent's blobs, so a
blob still pointed at by a run that stays is kept. The rows go first, in one
transaction per batch, then the files: a failure in between leaves files
that nothing points at, never a row that points at nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, delete, func, or_, select

from conveyor.definitions.intervals import parse_moment
from conveyor.storage.blobs import BlobStore
from conveyor.storage.db import Database
from conveyor.storage.journal import journal_path
from conveyor.storage.logs import LIVE_DIR
from conveyor.storage.schema import (
    backfill_runs,
    events,
    leases,
    logs,
    results,
    run_ends,
    runs,
    task_runs,
)
from conveyor.storage.states import RUN_TERMINAL

# Runs deleted in one transaction: a short write lock, so that runs in flight can write.
BATCH = 200
# The folders below the blob store's root that hold a run's blobs, per run id.
BLOB_FOLDERS = ("results", "logs")
# Where run workers write their output, below the instance's home
# (``execution.runner.start``): one ``<run id>.log`` per worker.
WORKERS_DIR = "workers"

_ENDED = [str(s) for s in RUN_TERMINAL]


@dataclass(slots=True)
class Deleted:
    """What a deletion removed: the runs' ids, and the files and bytes of logs and
    results it freed (bytes kept in database rows included)."""

    run_ids: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    def add(self, other: Deleted) -> None:
        self.run_ids += other.run_ids
        self.files += other.files
        self.bytes += other.bytes

    def __repr__(self) -> str:
        return f"Deleted(runs={len(self.run_ids)}, files={self.files}, bytes={self.bytes})"


class RunDeletion:
    """Finds and deletes ended runs of one instance."""

    def __init__(self, db: Database, blobs: BlobStore, home: Path | None) -> None:
        self.db = db
        self.blobs = blobs
        self.home = home

    def ended(
        self,
        *,
        job_name: str | None = None,
        before: float | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """The ids of ended runs (of ``job_name``, created before ``before``), oldest first."""
        q = select(runs.c.id).where(runs.c.status.in_(_ENDED), *_filters(job_name, before))
        q = q.order_by(runs.c.created_at, runs.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as conn:
            return [str(v) for v in conn.execute(q).scalars()]

    def active(self, *, job_name: str | None = None, before: float | None = None) -> int:
        """How many runs (of ``job_name``, created before ``before``) have not ended."""
        q = select(func.count()).where(runs.c.status.not_in(_ENDED), *_filters(job_name, before))
        with self.db.read() as conn:
            return int(conn.execute(q.select_from(runs)).scalar() or 0)

    def statuses(self, run_ids: Iterable[str]) -> dict[str, str]:
        """The status of each of ``run_ids`` that exists."""
        wanted = sorted(set(run_ids))
        found: dict[str, str] = {}
        with self.db.read() as conn:
            for chunk in _chunks(wanted, BATCH):
                q = select(runs.c.id, runs.c.status).where(runs.c.id.in_(chunk))
                found.update({str(r.id): str(r.status) for r in conn.execute(q)})
        return found

    def delete(self, run_ids: Iterable[str]) -> Deleted:
        """Delete those of ``run_ids`` that have ended, with their records and files.

        Runs that have not ended, and ids of no run, are left alone.
        """
        done = Deleted()
        for chunk in _chunks(sorted(set(run_ids)), BATCH):
            done.add(self._delete_batch(chunk))
        return done

    def _delete_batch(self, ids: Sequence[str]) -> Deleted:
        with self.db.write() as conn:
            gone = [
                str(v)
                for v in conn.execute(
                    select(runs.c.id).where(runs.c.id.in_(ids), runs.c.status.in_(_ENDED))
                ).scalars()
            ]
            if not gone:
                return Deleted()
            uris, inline = _blobs_of(conn, gone)
            kept = _still_pointed_at(conn, uris, gone)
            for table in (task_runs, events, logs, results, run_ends, backfill_runs):
                conn.execute(delete(table).where(table.c.run_id.in_(gone)))
            held = [leases.c.holder.in_(gone)]
            held += [leases.c.holder.like(f"{rid}/%") for rid in gone]
            conn.execute(delete(leases).where(or_(*held)))
            conn.execute(delete(runs).where(runs.c.id.in_(gone), runs.c.status.in_(_ENDED)))
        done = Deleted(run_ids=gone, bytes=inline)
        # Their blobs, those a failed write or a worker left behind in their folders too,
        # but not those another run still points at.
        files = set(uris)
        for rid in gone:
            for folder in BLOB_FOLDERS:
                files.update(self.blobs.under(f"{folder}/{rid}"))
            # What its tasks wrote while they ran, left where a killed process stopped.
            files.update(self.blobs.under(f"{LIVE_DIR.as_posix()}/{rid}"))
        for uri in sorted(files - kept):
            freed = self.blobs.remove(uri)
            if freed is not None:
                done.files += 1
                done.bytes += freed
        if self.home is not None:
            for rid in gone:
                for path in (self.home / WORKERS_DIR / f"{rid}.log", journal_path(self.home, rid)):
                    with contextlib.suppress(OSError):
                        path.unlink()
        return done


def epoch(value: datetime | str | float | None, what: str) -> float | None:
    """A moment given as a ``datetime``, an ISO date or datetime, or epoch seconds, in
    epoch seconds (a date or time without a zone is UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_moment(value, what).timestamp()


def _filters(job_name: str | None, before: float | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if job_name is not None:
        where.append(runs.c.job_name == job_name)
    if before is not None:
        where.append(runs.c.created_at < before)
    return where


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _blobs_of(conn: Connection, run_ids: Sequence[str]) -> tuple[set[str], int]:
    """The blob URIs the runs' log and result rows point at, and the bytes kept in the rows."""
    uris: set[str] = set()
    inline = 0
    for table in (logs, results):
        q = select(table.c.uri, table.c.size).where(table.c.run_id.in_(run_ids))
        for row in conn.execute(q):
            if row.uri is None:
                inline += int(row.size)
            else:
                uris.add(str(row.uri))
    return uris, inline


def _still_pointed_at(conn: Connection, uris: set[str], run_ids: Sequence[str]) -> set[str]:
    """Those of ``uris`` that results of other runs point at too (reruns reuse results)."""
    kept: set[str] = set()
    for chunk in _chunks(sorted(uris), BATCH):
        q = select(results.c.uri).where(results.c.uri.in_(chunk), results.c.run_id.not_in(run_ids))
        kept.update(str(v) for v in conn.execute(q).scalars())
    return kept
