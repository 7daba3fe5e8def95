"""The write path of one run: task states, events, log and result pointers, batched.

Writing each state change in its own transaction would cost more than the
tasks themselves (a commit per change). The recorder keeps the changes in
memory and writes them in one transaction every ``FLUSH_INTERVAL`` seconds,
from a background thread, and at once when the run ends. A pending insert
followed by updates before a flush becomes one insert of the final row. The
most a crash of the whole process can lose is the last interval's changes,
and the run monitor (a later layer) ends such runs as failed.

Every task state change is checked against the transitions table here, and
updates are guarded in SQL by the status they were checked against.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from conveyor.storage.events import EventStore
from conveyor.storage.logs import LogStore
from conveyor.storage.results import ResultStore
from conveyor.storage.runs import RunStore
from conveyor.storage.states import RunStatus, TaskStatus, check_task
from conveyor.storage.task_runs import MUTABLE, TaskRunStore

FLUSH_INTERVAL = 0.2

TaskKey = tuple[str, int]


class RunRecorder:
    """Records one run's task states, events, logs and results, in batches."""

    def __init__(
        self, db: Any, log_store: LogStore, result_store: ResultStore, run_id: str
    ) -> None:
        self.db = db
        self.run_id = run_id
        self._log_store = log_store
        self._result_store = result_store
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._rows: dict[TaskKey, dict[str, Any]] = {}
        self._dirty: dict[TaskKey, None] = {}
        self._persisted: dict[TaskKey, str] = {}
        self._events: list[dict[str, Any]] = []
        self._logs: list[dict[str, Any]] = []
        self._results: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- recording ----------------------------------------------------------------------------

    def task(
        self,
        key: str,
        attempt: int,
        status: TaskStatus,
        *,
        task_name: str | None = None,
        depends_on: list[str] | None = None,
        **fields: Any,
    ) -> None:
        """Record that attempt ``attempt`` of task ``key`` is now in ``status``."""
        k = (key, attempt)
        with self._lock:
            row = self._rows.get(k)
            prev = None if row is None else TaskStatus(row["status"])
            check_task(prev, status, f"{key!r} (attempt {attempt}) of run {self.run_id}")
            if row is None:
                row = {
                    "run_id": self.run_id,
                    "task_key": key,
                    "attempt": attempt,
                    "task_name": task_name or key,
                    "status": "",
                    "started_at": None,
                    "ended_at": None,
                    "depends_on": depends_on or [],
                    "error_type": None,
                    "error_message": None,
                    "error_traceback": None,
                    "retry_wait": None,
                }
                self._rows[k] = row
            row["status"] = status.value
            if fields:
                row.update(fields)
            self._dirty[k] = None
        self._ensure_thread()

    def task_status(self, key: str, attempt: int) -> TaskStatus | None:
        row = self._rows.get((key, attempt))
        return None if row is None else TaskStatus(row["status"])

    def event(
        self,
        kind: str,
        message: str,
        *,
        task_key: str | None = None,
        attempt: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        row = {
            "run_id": self.run_id,
            "task_key": task_key,
            "attempt": attempt,
            "at": time.time(),
            "kind": kind,
            "message": message,
            "data": data,
        }
        with self._lock:
            self._events.append(row)
        self._ensure_thread()

    def log(self, key: str, attempt: int, stream: str, data: bytes) -> None:
        """Store a task attempt's captured output now; its pointer row goes in the next batch."""
        pointer = self._log_store.put(self.run_id, key, attempt, stream, data)
        with self._lock:
            self._logs.append(pointer)

    def result(self, key: str, value: Any) -> None:
        """Store a task's output now; its pointer row goes in the next batch."""
        pointer = self._result_store.put(self.run_id, key, value)
        with self._lock:
            self._results.append(pointer)

    def stored_result(self, key: str, where: dict[str, Any]) -> None:
        """Record a result that another process already wrote to the blob store."""
        with self._lock:
            self._results.append({"run_id": self.run_id, "task_key": key, **where})

    def reuse_result(self, key: str, pointer: dict[str, Any]) -> None:
        """Point this run's result of ``key`` at another run's stored bytes."""
        with self._lock:
            self._results.append({**pointer, "run_id": self.run_id, "task_key": key})

    # -- flushing -----------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name=f"conveyor-recorder-{self.run_id[:8]}", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:
                # The batch was put back; the next flush (at the latest the one
                # in close(), on the run's own thread) tries again and raises.
                continue

    def flush(self, *, run_status: RunStatus | None = None, error: str | None = None) -> None:
        """Write everything recorded so far in one transaction.

        With ``run_status``, the run's own status change goes in the same
        transaction, so a run's final state and its tasks' land together.
        """
        with self._flush_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, {}
                events, self._events = self._events, []
                logs, self._logs = self._logs, []
                results, self._results = self._results, []
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for k in dirty:
                    row = self._rows[k]
                    prev = self._persisted.get(k)
                    if prev is None:
                        inserts.append(dict(row))
                    else:
                        upd = {c: row[c] for c in MUTABLE}
                        upd.update(
                            b_run_id=self.run_id,
                            b_task_key=k[0],
                            b_attempt=k[1],
                            b_prev_status=prev,
                        )
                        updates.append(upd)
            if not (dirty or events or logs or results or run_status):
                return
            try:
                with self.db.write() as conn:
                    TaskRunStore.write(conn, inserts, updates)
                    EventStore.write(conn, events)
                    LogStore.write(conn, logs)
                    ResultStore.write(conn, results)
                    if run_status is not None:
                        RunStore.set_status_in(conn, self.run_id, run_status, error=error)
            except BaseException:
                with self._lock:
                    self._dirty = {**dirty, **self._dirty}
                    self._events[:0] = events
                    self._logs[:0] = logs
                    self._results[:0] = results
                raise
            for row in inserts:
                self._persisted[(row["task_key"], row["attempt"])] = row["status"]
            for upd in updates:
                self._persisted[(upd["b_task_key"], upd["b_attempt"])] = upd["status"]

    def close(self, *, run_status: RunStatus | None = None, error: str | None = None) -> None:
        """Stop the background flushes and write what is left (and the final run status)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush(run_status=run_status, error=error)
