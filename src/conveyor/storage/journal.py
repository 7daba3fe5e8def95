"""A run's local journal: what it could not write while the database was away.

The recorder writes a run's records in batches. When a batch cannot be
written (the database is unreachable, or its connections keep dying), the
recorder keeps the batch, goes on working, and saves everything it has not
written yet to a file in ``CONVEYOR_HOME/journal/<run id>.pkl``, replaced
atomically each time; the file is removed once the database has it all. A
run worker that gives up waiting, or dies, leaves the file behind, and the
records are applied later from it (``conveyor runs recover``, or the judge
of dead runs on the same machine), guarded by the run's fencing token like
any write of the run.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from conveyor.storage.events import EventStore
from conveyor.storage.logs import LogStore
from conveyor.storage.results import ResultStore
from conveyor.storage.runs import RunStore
from conveyor.storage.states import RunStatus
from conveyor.storage.task_runs import TaskRunStore

JOURNAL_DIR = "journal"


@dataclass(slots=True)
class Batch:
    """Records of one run to write in one transaction."""

    run_id: str
    token: int | None
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    run_status: str | None = None
    error: str | None = None
    # The batch's number in its run: the run's row counts the batches written, so a
    # batch is never written twice (its first COMMIT may have landed unanswered).
    seq: int | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.inserts
            or self.updates
            or self.events
            or self.logs
            or self.results
            or self.run_status
        )

    @property
    def size(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.events) + len(self.logs)

    def write(self, conn: Connection) -> bool:
        """Write the batch in the caller's transaction; False if it was written before.

        With a token, only while the run is still that token's
        (``LeaseLostError`` otherwise, and nothing is written).
        """
        # One statement in the common case: the run is ours, and the batch is new.
        if (
            self.token is not None
            and self.seq is not None
            and RunStore.count_batch_if_ours(
                conn, self.run_id, self.token, self.seq, self.run_status, self.error
            )
        ):
            self._write_records(conn)
            return True
        if self.token is not None:
            written = RunStore.guard(conn, self.run_id, self.token)
        else:
            written = RunStore.batches_written(conn, self.run_id)
        if self.seq is not None and written >= self.seq:
            return False
        self._write_records(conn)
        if self.run_status is not None:
            RunStore.set_status_in(
                conn, self.run_id, RunStatus(self.run_status), error=self.error, token=self.token
            )
        if self.seq is not None:
            RunStore.count_batch(conn, self.run_id, self.seq)
        return True

    def _write_records(self, conn: Connection) -> None:
        TaskRunStore.write(conn, self.inserts, self.updates)
        EventStore.write(conn, self.events)
        LogStore.write(conn, self.logs)
        ResultStore.write(conn, self.results)


def journal_path(home: Path, run_id: str) -> Path:
    return home / JOURNAL_DIR / f"{run_id}.pkl"


def save(path: Path, batches: list[Batch]) -> None:
    """Replace the journal at ``path`` with ``batches``: a temporary file, fsync, rename, so
    a crash leaves the old journal or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(batches, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load(path: Path) -> list[Batch] | None:
    """The batches kept at ``path``, oldest first, or None if there is no journal."""
    try:
        with open(path, "rb") as f:
            batches = pickle.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(batches, list) or not all(isinstance(b, Batch) for b in batches):
        raise TypeError(f"{path} is not a Conveyor run journal")
    return batches


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def kept(home: Path) -> list[Path]:
    """The journals left in ``home``, oldest first."""
    folder = home / JOURNAL_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
