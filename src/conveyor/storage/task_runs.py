"""The task-run store: one row per attempt of each task in a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from conveyor.errors import StorageError
from conveyor.storage.db import Database
from conveyor.storage.records import TaskRunRecord
from conveyor.storage.schema import task_runs
from conveyor.storage.states import TaskStatus, check_task

MUTABLE = (
    "status",
    "started_at",
    "ended_at",
    "error_type",
    "error_message",
    "error_traceback",
    "retry_wait",
    "cpu",
    "memory",
)

_update_stmt = (
    update(task_runs)
    .where(
        task_runs.c.run_id == bindparam("b_run_id"),
        task_runs.c.task_key == bindparam("b_task_key"),
        task_runs.c.attempt == bindparam("b_attempt"),
        task_runs.c.status == bindparam("b_prev_status"),
    )
    .values({c: bindparam(c) for c in MUTABLE})
)


class TaskRunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def write(
        conn: Connection, inserts: Sequence[dict[str, Any]], updates: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new attempt rows and update existing ones, in the caller's transaction.

        Each update carries ``b_prev_status``, the status it was checked against;
        a row that changed under it is a lost write and an error.
        """
        if inserts:
            conn.execute(task_runs.insert(), list(inserts))
        if updates:
            res = conn.execute(_update_stmt, list(updates))
            if res.rowcount not in (-1, len(updates)):
                raise StorageError(
                    f"{len(updates) - res.rowcount} task status updates found the row in "
                    f"another state than expected; another process changed these task runs"
                )

    def end_unfinished(self, run_id: str, reason: str, *, canceled: bool = False) -> None:
        """Close the task runs a dead process left open: running ones fail (or are canceled,
        with ``canceled``), pending ones are canceled (all allowed by the transitions table)."""
        with self.db.write() as conn:
            self.end_unfinished_in(conn, run_id, reason, canceled=canceled)

    def open_in_ended(self, run_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Runs that ended (of ``run_ids``, or all) with task runs still running or pending,
        and how each ended: rows the run's end should have closed."""
        from conveyor.storage.schema import runs
        from conveyor.storage.states import RUN_TERMINAL

        q = (
            select(runs.c.id, runs.c.status)
            .join(task_runs, task_runs.c.run_id == runs.c.id)
            .where(
                task_runs.c.status.in_([str(TaskStatus.RUNNING), str(TaskStatus.PENDING)]),
                runs.c.status.in_([str(s) for s in RUN_TERMINAL]),
            )
            .distinct()
        )
        found: dict[str, str] = {}
        with self.db.read() as conn:
            if run_ids is None:
                found.update((str(r.id), str(r.status)) for r in conn.execute(q))
            else:
                wanted = sorted(set(run_ids))
                for i in range(0, len(wanted), 500):
                    chunk = q.where(task_runs.c.run_id.in_(wanted[i : i + 500]))
                    found.update((str(r.id), str(r.status)) for r in conn.execute(chunk))
        return found

    @staticmethod
    def end_unfinished_in(
        conn: Connection, run_id: str, reason: str, *, canceled: bool = False
    ) -> None:
        """``end_unfinished`` inside the caller's write transaction; with ``canceled`` (the
        run was being canceled), running tasks end canceled rather than failed."""
        now = time.time()
        running_to = TaskStatus.CANCELED if canceled else TaskStatus.FAILURE
        for frm, to in (
            (TaskStatus.RUNNING, running_to),
            (TaskStatus.PENDING, TaskStatus.CANCELED),
        ):
            check_task(frm, to, f"of run {run_id}")
            conn.execute(
                update(task_runs)
                .where(task_runs.c.run_id == run_id, task_runs.c.status == str(frm))
                .values(
                    status=str(to),
                    ended_at=now,
                    error_message=reason,
                    error_type="conveyor.errors.WorkerLostError"
                    if to is TaskStatus.FAILURE
                    else None,
                )
            )

    @staticmethod
    def finish_running_in(
        conn: Connection,
        run_id: str,
        task_key: str,
        attempt: int,
        to: TaskStatus,
        *,
        at: float,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        """End one attempt that is running as ``to``, in the caller's transaction; False
        if it is not running (it ended already, or never began)."""
        check_task(TaskStatus.RUNNING, to, f"{task_key} of run {run_id}")
        res = conn.execute(
            update(task_runs)
            .where(
                task_runs.c.run_id == run_id,
                task_runs.c.task_key == task_key,
                task_runs.c.attempt == attempt,
                task_runs.c.status == str(TaskStatus.RUNNING),
            )
            .values(status=str(to), ended_at=at, error_type=error_type, error_message=error_message)
        )
        return bool(res.rowcount == 1)

    def for_task(self, run_id: str, task_key: str) -> list[TaskRunRecord]:
        """The attempts of one task in a run, first first."""
        q = (
            select(task_runs)
            .where(task_runs.c.run_id == run_id, task_runs.c.task_key == task_key)
            .order_by(task_runs.c.attempt)
        )
        with self.db.read() as conn:
            return [TaskRunRecord.from_row(r) for r in conn.execute(q)]

    def for_run(self, run_id: str) -> list[TaskRunRecord]:
        q = select(task_runs).where(task_runs.c.run_id == run_id)
        with self.db.read() as conn:
            rows = [TaskRunRecord.from_row(r) for r in conn.execute(q)]
        # Order by when each task first started, not-started tasks after, so the
        # listing reads in execution order on every database.
        first_start: dict[str, float] = {}
        for r in rows:
            if r.started_at is not None:
                ts = r.started_at.timestamp()
                first_start[r.task_key] = min(first_start.get(r.task_key, ts), ts)
        rows.sort(key=lambda r: (first_start.get(r.task_key, float("inf")), r.task_key, r.attempt))
        return rows
