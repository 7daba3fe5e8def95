"""The log store: each task attempt's stdout and stderr, live while it runs, then stored.

While an attempt runs, what it writes goes line by line to a *live file*
(``<home>/logs/live/<run id>/<task>.<attempt>.out|err``), from whichever
process runs it, so that a process killed mid-task (a timeout, a cancel, a
memory limit, SIGKILL) loses none of the lines it wrote, and ``conveyor logs``
can read them, or follow them, while the task runs. When the attempt ends,
its output is stored like any other record (a blob with a pointer row) and
its live file is removed once that row is written. A live file whose output
was never stored (its run's process died) stays, and is read in its place.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from conveyor.storage.blobs import BlobStore, DirectoryBlobStore, fetch, safe_name, store
from conveyor.storage.db import Database
from conveyor.storage.schema import logs

STREAMS = ("stdout", "stderr")
LIVE_DIR = Path("logs") / "live"


def extension(stream: str) -> str:
    return "out" if stream == "stdout" else "err"


def live_file(directory: str | os.PathLike[str], task_key: str, attempt: int, stream: str) -> Path:
    """The live file of one attempt's ``stream`` in its run's live folder."""
    return Path(directory) / f"{safe_name(task_key)}.{attempt}.{extension(stream)}"


class LogStore:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs
        # Live files need a folder every process of a run can reach: the instance's home.
        self.live_root = blobs.root / LIVE_DIR if isinstance(blobs, DirectoryBlobStore) else None

    def put(
        self, run_id: str, task_key: str, attempt: int, stream: str, data: bytes
    ) -> dict[str, Any]:
        """Store the bytes and return the pointer row to record with the run.

        Raises:
            StorageError: the bytes cannot be written (no partial file is left).
        """
        where = store(
            self.blobs,
            f"logs/{run_id}/{safe_name(task_key)}.{attempt}.{extension(stream)}",
            data,
        )
        return {
            "run_id": run_id,
            "task_key": task_key,
            "attempt": attempt,
            "stream": stream,
            **where,
        }

    @staticmethod
    def write(conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(logs.insert(), rows)

    # -- live files -----------------------------------------------------------------------------

    def live_dir(self, run_id: str) -> str | None:
        """The folder of run ``run_id``'s live files (None for an instance in memory)."""
        return None if self.live_root is None else str(self.live_root / run_id)

    def read_live(
        self, run_id: str, task_key: str, attempt: int, stream: str, offset: int = 0
    ) -> bytes | None:
        """The bytes of an attempt's live file from ``offset`` on; None if there is none."""
        directory = self.live_dir(run_id)
        if directory is None:
            return None
        try:
            with open(live_file(directory, task_key, attempt, stream), "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return None

    def live_attempts(self, run_id: str, task_key: str, stream: str) -> list[int]:
        """The attempts of a task that have a live file of ``stream``, in order."""
        directory = self.live_dir(run_id)
        if directory is None:
            return []
        prefix, suffix = f"{safe_name(task_key)}.", f".{extension(stream)}"
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        found = []
        for name in names:
            middle = name[len(prefix) : -len(suffix)]
            if name.startswith(prefix) and name.endswith(suffix) and middle.isdigit():
                found.append(int(middle))
        return sorted(found)

    def stored(self, rows: list[dict[str, Any]]) -> None:
        """The pointer rows ``rows`` are written: their live files are not needed any more."""
        for row in rows:
            directory = self.live_dir(row["run_id"])
            if directory is not None:
                with contextlib.suppress(OSError):
                    live_file(directory, row["task_key"], row["attempt"], row["stream"]).unlink()

    def run_ended(self, run_id: str) -> None:
        """The run's records are all written: its live folder goes, once it is empty (a live
        file whose output was not stored stays, to be read in its place)."""
        directory = self.live_dir(run_id)
        if directory is not None:
            with contextlib.suppress(OSError):
                os.rmdir(directory)

    # -- reading --------------------------------------------------------------------------------

    def attempts(self, run_id: str, task_key: str, stream: str) -> dict[int, tuple[bytes, bool]]:
        """What each attempt of a task wrote to ``stream``, and whether it is stored (final).

        Live files are read before the stored rows, and a live file is removed
        only after its row is written, so an attempt that is ending is never
        missed between the two.
        """
        found: dict[int, tuple[bytes, bool]] = {}
        for attempt in self.live_attempts(run_id, task_key, stream):
            data = self.read_live(run_id, task_key, attempt, stream)
            if data is not None:
                found[attempt] = (data, False)
        q = (
            select(logs.c.attempt, logs.c.uri, logs.c.data)
            .where(logs.c.run_id == run_id, logs.c.task_key == task_key, logs.c.stream == stream)
            .order_by(logs.c.attempt)
        )
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        for row in rows:
            found[row.attempt] = (fetch(self.blobs, row), True)
        return dict(sorted(found.items()))

    def read(
        self, run_id: str, task_key: str, *, stream: str = "stdout", lines: int | None = 5000
    ) -> str:
        """The text a task wrote to ``stream`` across its attempts (last ``lines`` lines),
        including what an attempt still running, or stopped, wrote so far.

        Attempts after the first are introduced by a ``--- attempt N ---`` line.
        """
        texts = self.attempts(run_id, task_key, stream)
        other = "stderr" if stream == "stdout" else "stdout"
        q = select(logs.c.attempt).where(logs.c.run_id == run_id, logs.c.task_key == task_key)
        with self.db.read() as conn:
            wrote = set(texts) | set(conn.execute(q).scalars())
        wrote.update(self.live_attempts(run_id, task_key, other))
        # Name the attempts whenever the task wrote output in more than one.
        multi = len(wrote) > 1 or any(a > 1 for a in wrote)
        parts = []
        for attempt, (data, _) in texts.items():
            text = data.decode("utf-8", "replace")
            if multi:
                parts.append(f"--- attempt {attempt} ---\n")
            parts.append(text if text.endswith("\n") or not text else text + "\n")
        out = "".join(parts)
        if lines is not None:
            kept = out.splitlines(keepends=True)[-lines:] if lines > 0 else []
            out = "".join(kept)
        return out


class LogTail:
    """Follows what one task writes to one stream: each ``poll`` returns the new text.

    Lines of a running attempt come from its live file, whole lines only; once
    the attempt's output is stored, the rest of it comes from there.
    """

    def __init__(self, log_store: LogStore, run_id: str, task_key: str, stream: str) -> None:
        self.log_store = log_store
        self.run_id = run_id
        self.task_key = task_key
        self.stream = stream
        # Bytes of each attempt shown so far, and the attempts shown to their end.
        self.shown: dict[int, int] = {}
        self.done: set[int] = set()

    def poll(self) -> str:
        parts = []
        for attempt, (data, final) in self.log_store.attempts(
            self.run_id, self.task_key, self.stream
        ).items():
            if attempt in self.done:
                continue
            start = self.shown.get(attempt)
            end = len(data) if final else data.rfind(b"\n") + 1
            if start is None:
                if end == 0 and not final:
                    continue
                start = 0
                if attempt > 1:
                    parts.append(f"--- attempt {attempt} ---\n")
            new = data[start:end].decode("utf-8", "replace")
            if final:
                self.done.add(attempt)
                if new and not new.endswith("\n"):
                    new += "\n"
            self.shown[attempt] = max(start, end)
            parts.append(new)
        return "".join(parts)
