"""The result store: each succeeded task's output, pickled into a blob with a pointer row."""

from __future__ import annotations

import pickle
from typing import Any

from sqlalchemy import Connection, select

from conveyor.errors import NotFoundError, StorageError
from conveyor.storage.blobs import BlobStore, fetch, safe_name, store
from conveyor.storage.db import Database
from conveyor.storage.schema import results


class ResultStore:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def put(self, run_id: str, task_key: str, value: Any) -> dict[str, Any]:
        """Pickle and store ``value``; return the pointer row to record with the run.

        Raises:
            StorageError: ``value`` cannot be pickled (the error's ``__cause__``
                is the pickling error), or its bytes cannot be written (the
                ``__cause__`` is the ``OSError``; no partial file is left).
        """
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise StorageError(
                f"the output of task {task_key!r} ({type(value).__name__}) cannot be pickled, so "
                f"it cannot be stored for reruns or other processes: {e}"
            ) from e
        where = store(self.blobs, f"results/{run_id}/{safe_name(task_key)}.pkl", data)
        t = type(value)
        return {
            "run_id": run_id,
            "task_key": task_key,
            **where,
            "type_name": f"{t.__module__}.{t.__qualname__}"[:255],
        }

    @staticmethod
    def write(conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(results.insert(), rows)

    def pointers(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Every stored result of a run, by task key."""
        with self.db.read() as conn:
            rows = conn.execute(select(results).where(results.c.run_id == run_id)).all()
        return {r.task_key: dict(r._mapping) for r in rows}

    def get(self, run_id: str, task_key: str) -> Any:
        with self.db.read() as conn:
            row = conn.execute(
                select(results.c.uri, results.c.data).where(
                    results.c.run_id == run_id, results.c.task_key == task_key
                )
            ).first()
        if row is None:
            raise NotFoundError(
                f"run {run_id} has no stored result for task {task_key!r}; only tasks that "
                f"succeeded have one"
            )
        return self.load(row)

    def load(self, pointer: Any) -> Any:
        """The value a pointer row (from ``pointers()`` or a query) stands for."""
        return pickle.loads(fetch(self.blobs, pointer))
