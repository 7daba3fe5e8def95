"""The log store: each task attempt's stdout and stderr, as blobs with pointer rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from conveyor.storage.blobs import BlobStore, fetch, safe_name, store
from conveyor.storage.db import Database
from conveyor.storage.schema import logs

STREAMS = ("stdout", "stderr")


class LogStore:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def put(
        self, run_id: str, task_key: str, attempt: int, stream: str, data: bytes
    ) -> dict[str, Any]:
        """Store the bytes and return the pointer row to record with the run.

        Raises:
            StorageError: the bytes cannot be written (no partial file is left).
        """
        ext = "out" if stream == "stdout" else "err"
        where = store(self.blobs, f"logs/{run_id}/{safe_name(task_key)}.{attempt}.{ext}", data)
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

    def read(
        self, run_id: str, task_key: str, *, stream: str = "stdout", lines: int | None = 5000
    ) -> str:
        """The text a task wrote to ``stream`` across its attempts (last ``lines`` lines).

        Attempts after the first are introduced by a ``--- attempt N ---`` line.
        """
        q = (
            select(logs.c.attempt, logs.c.stream, logs.c.uri, logs.c.data)
            .where(logs.c.run_id == run_id, logs.c.task_key == task_key)
            .order_by(logs.c.attempt)
        )
        with self.db.read() as conn:
            all_rows = conn.execute(q).all()
        rows = [r for r in all_rows if r.stream == stream]
        # Name the attempts whenever the task wrote output in more than one.
        multi = len({r.attempt for r in all_rows}) > 1 or any(r.attempt > 1 for r in all_rows)
        parts = []
        for row in rows:
            text = fetch(self.blobs, row).decode("utf-8", "replace")
            if multi:
                parts.append(f"--- attempt {row.attempt} ---\n")
            parts.append(text if text.endswith("\n") or not text else text + "\n")
        out = "".join(parts)
        if lines is not None:
            kept = out.splitlines(keepends=True)[-lines:] if lines > 0 else []
            out = "".join(kept)
        return out
