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

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigError, JournalKeptError, LeaseLostError
from conveyor.storage import journal
from conveyor.storage.db import is_transient
from conveyor.storage.journal import Batch
from conveyor.storage.logs import LogStore
from conveyor.storage.redact import Redactor
from conveyor.storage.results import ResultStore
from conveyor.storage.states import RunStatus, TaskStatus, check_task
from conveyor.storage.task_runs import MUTABLE

FLUSH_INTERVAL = 0.2
# The longest wait between two tries while the database is away.
MAX_RETRY_WAIT = 5.0
ENV_JOURNAL_WAIT = "CONVEYOR_JOURNAL_WAIT"
# How long a run's end waits for the database by default (seconds).
DEFAULT_JOURNAL_WAIT = 600.0

log = logging.getLogger("conveyor")

TaskKey = tuple[str, int]


class RunRecorder:
    """Records one run's task states, events, logs and results, in batches."""

    def __init__(
        self,
        db: Any,
        log_store: LogStore,
        result_store: ResultStore,
        run_id: str,
        *,
        token: int | None = None,
        journal: Path | None = None,
        wait_limit: float | None = None,
    ) -> None:
        self.db = db
        self.run_id = run_id
        # The run's fencing token: every batch is written only while the run has it.
        self.token = token
        # Where unwritten records are kept while the database is away (None: memory only).
        self.journal = journal
        # How long ``close`` waits for the database before it gives up.
        self.wait_limit = wait_limit if wait_limit is not None else journal_wait()
        # Why this run may no longer write, once the database refused its token.
        self.lost: str | None = None
        self.on_lost: Callable[[str], None] | None = None
        # The run's secret values, masked in every error, event and log it writes.
        self.redactor: Redactor | None = None
        self._offline_since: float | None = None
        self._final: tuple[str, str | None] | None = None
        # The batch taken from the queues and not yet known to be written, and the
        # number of the last batch taken.
        self._inflight: Batch | None = None
        self._seq = 0
        # Whether a journal file was saved (and is to be removed once all is written).
        self._journaled = False
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
                    "cpu": None,
                    "memory": None,
                }
                self._rows[k] = row
            row["status"] = status.value
            if fields:
                if self.redactor:
                    for name in ("error_message", "error_traceback"):
                        if isinstance(fields.get(name), str):
                            fields[name] = self.redactor.text(fields[name])
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
        if self.redactor:
            message, data = self.redactor.text(message), self.redactor.tree(data)
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
        """Store a task attempt's captured output now; its pointer row goes in the next batch.

        Raises ``StorageError`` when the bytes cannot be written; nothing is recorded then.
        """
        if self.redactor:
            data = self.redactor.bytes(data)
        pointer = self._log_store.put(self.run_id, key, attempt, stream, data)
        with self._lock:
            self._logs.append(pointer)

    def result(self, key: str, value: Any) -> None:
        """Store a task's output now; its pointer row goes in the next batch.

        Raises ``StorageError`` when it cannot be pickled or written; nothing is recorded then.
        """
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
        wait = FLUSH_INTERVAL
        while not self._stop.wait(wait):
            try:
                self.flush()
                wait = FLUSH_INTERVAL
            except LeaseLostError:
                return  # nothing more of this run may be written; the run stops (on_lost)
            except Exception:
                # The batch was kept (and journaled); try again, less often while it fails.
                # The last try is close()'s, on the run's own thread, which raises.
                wait = min(wait * 2, MAX_RETRY_WAIT)

    def flush(self, *, run_status: RunStatus | None = None, error: str | None = None) -> None:
        """Write everything recorded so far.

        With ``run_status``, the run's own status change goes in the same
        transaction, so a run's final state and its tasks' land together.

        Records leave the queues as numbered batches. A batch whose write
        failed stays in flight, and is written again before anything newer;
        the run's row counts the batches written (``Batch.write``), so a
        batch that did land although its COMMIT's answer was lost is not
        written twice. While a batch is in flight it is saved to the journal
        with everything queued behind it. Once the database refuses the
        run's token, nothing more is written and ``LeaseLostError`` is raised.
        """
        with self._flush_lock:
            if self.lost is not None:
                raise LeaseLostError(self.lost)
            if run_status is not None:
                self._final = (str(run_status), self._redacted(error))
            if self._inflight is None:
                batch = self._take()
                if batch.empty:
                    return
                self._inflight = batch
            while self._inflight is not None:
                try:
                    with self.db.write() as conn:
                        self._inflight.write(conn)
                except LeaseLostError as e:
                    self._lose(str(e))
                    raise
                except BaseException as e:
                    self._went_offline(e)
                    raise
                if self._inflight.logs:
                    self._log_store.stored(self._inflight.logs)
                batch = self._take()
                self._inflight = None if batch.empty else batch
            self._written()

    def _take(self) -> Batch:
        """Everything not written yet, as the next numbered batch; it leaves the queues.

        The rows in it count as written from now on (an update after it is
        checked against the status it carries): batches are written in order,
        and one in flight is written before anything newer.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, {}
            batch = self._batch(dirty, self._seq + 1)
            if batch.empty:
                return batch
            self._seq += 1
            self._events, self._logs, self._results = [], [], []
            self._final = None
            for row in batch.inserts:
                self._persisted[(row["task_key"], row["attempt"])] = row["status"]
            for upd in batch.updates:
                self._persisted[(upd["b_task_key"], upd["b_attempt"])] = upd["status"]
        return batch

    def _batch(self, dirty: dict[TaskKey, None], seq: int) -> Batch:
        """Batch ``seq`` of ``dirty`` rows and the queued records (the caller holds the lock)."""
        batch = Batch(self.run_id, self.token, seq=seq)
        for k in dirty:
            row = self._rows[k]
            prev = self._persisted.get(k)
            if prev is None:
                batch.inserts.append(dict(row))
            else:
                upd = {c: row[c] for c in MUTABLE}
                upd.update(
                    b_run_id=self.run_id, b_task_key=k[0], b_attempt=k[1], b_prev_status=prev
                )
                batch.updates.append(upd)
        batch.events, batch.logs, batch.results = (
            list(self._events),
            list(self._logs),
            list(self._results),
        )
        if self._final is not None:
            batch.run_status, batch.error = self._final
        return batch

    def _written(self) -> None:
        if self._offline_since is not None:
            took = time.monotonic() - self._offline_since
            self._offline_since = None
            log.warning(
                "run %s: the database is back after %.1fs; its records are written",
                self.run_id[:8],
                took,
            )
        if self.journal is not None and self._journaled:
            journal.remove(self.journal)
            self._journaled = False

    def _went_offline(self, error: BaseException) -> None:
        """Keep what could not be written in the journal, and say so once."""
        if self._offline_since is None:
            self._offline_since = time.monotonic()
            where = f"; keeping its records in {self.journal}" if self.journal else ""
            log.warning(
                "run %s cannot write its records (%s)%s; it goes on and tries again",
                self.run_id[:8],
                str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
                where,
            )
        if self.journal is None or self._inflight is None:
            return
        with self._lock:
            behind = self._batch(dict(self._dirty), self._seq + 1)
        kept = [self._inflight] if behind.empty else [self._inflight, behind]
        try:
            journal.save(self.journal, kept)
            self._journaled = True
        except OSError as e:
            log.error("run %s: cannot save its journal %s: %s", self.run_id[:8], self.journal, e)

    def _lose(self, why: str) -> None:
        first = self.lost is None
        self.lost = why
        if first and self.on_lost is not None:
            self.on_lost(why)

    def close(self, *, run_status: RunStatus | None = None, error: str | None = None) -> None:
        """Stop the background flushes and write what is left (and the final run status).

        While the database cannot be reached, it tries again with backoff for
        up to ``wait_limit`` seconds, the records safe in the journal; then it
        raises ``JournalKeptError`` naming the journal to recover from.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if run_status is not None:
            with self._flush_lock:
                self._final = (str(run_status), self._redacted(error))
        deadline = time.monotonic() + self.wait_limit
        wait = FLUSH_INTERVAL
        while True:
            try:
                self.flush()
                self._log_store.run_ended(self.run_id)
                return
            except LeaseLostError:
                raise
            except Exception as e:
                if not is_transient(e):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JournalKeptError(self._gave_up(e)) from e
            # The last try comes at the deadline, not a backoff step before it.
            time.sleep(min(wait, left))
            wait = min(wait * 2, MAX_RETRY_WAIT)

    def _redacted(self, text: str | None) -> str | None:
        return self.redactor.text(text) if self.redactor and text is not None else text

    def _gave_up(self, error: BaseException) -> str:
        first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        if self.journal is None:
            return (
                f"run {self.run_id}: the database was unreachable for {self.wait_limit:g}s "
                f"({first}); its last records are lost (an in-memory instance keeps no journal)"
            )
        return (
            f"run {self.run_id}: the database was unreachable for {self.wait_limit:g}s "
            f"({first}); the run's records are kept in {self.journal}. When the database is "
            f"back, `conveyor runs recover {self.run_id[:8]}` writes them (a daemon on this "
            f"machine does it too). Wait longer with {ENV_JOURNAL_WAIT}=SECONDS"
        )


def journal_wait() -> float:
    """How long a run waits for the database at its end (``CONVEYOR_JOURNAL_WAIT``)."""
    raw = os.environ.get(ENV_JOURNAL_WAIT)
    if not raw:
        return DEFAULT_JOURNAL_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(
            f"{ENV_JOURNAL_WAIT}={raw!r}: give the seconds a run waits for the database at its "
            f"end, e.g. {ENV_JOURNAL_WAIT}=600"
        )
    return value
