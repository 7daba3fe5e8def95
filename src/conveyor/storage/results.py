"""The result store: each succeeded task's output, pickled into a blob with a pointer row.

Every stored result, inline in its row or in the blob store, is signed: its
bytes start with a header line ``conveyor-result-1 <HMAC-SHA256 hex>`` of the
pickle that follows, under a key derived from the instance's secret key
(``CONVEYOR_SECRET_KEY``, else the key file ``<CONVEYOR_HOME>/secret.key``, made
on first use; see ``storage.secrets``). Unpickling runs code, so a result is
unpickled only when its signature matches: a result altered in the store, or
written by another instance (another key), or by a Conveyor from before
results were signed, is refused with ``ResultSignatureError``. Every process
that writes or reads results of an instance needs its key, as it needs its
database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from conveyor.errors import NotFoundError, StorageError
from conveyor.storage.blobs import BlobStore, fetch, safe_name, store
from conveyor.storage.db import Database
from conveyor.storage.schema import results
from conveyor.storage.secrets import ENV_SECRET_KEY, KEY_FILE, _key_file

HEADER = b"conveyor-result-1 "
_SIGNED_LENGTH = len(HEADER) + 64 + 1  # the header, the hex digest, a newline
# The signing key is derived from the secret key, so that the key that encrypts
# secrets never signs anything itself.
_PURPOSE = b"conveyor: sign stored results"


class ResultSignatureError(StorageError):
    """A stored result's signature does not match its bytes under the instance's key: it
    was altered, written by another instance, or written before results were signed."""


class ResultSigner:
    """Signs and checks result bytes with the key of the instance whose home is ``home``
    (None: a key kept in this process's memory, for an instance in memory)."""

    def __init__(self, home: Path | None) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._key: tuple[str, bytes] | None = None
        self._memory_key = secrets.token_bytes(32)

    def key(self) -> bytes:
        env = os.environ.get(ENV_SECRET_KEY)
        wanted = env or ""
        with self._lock:
            if self._key is not None and self._key[0] == wanted:
                return self._key[1]
            if env:
                secret = env.strip().encode()
            elif self.home is not None:
                secret = _key_file(self.home / KEY_FILE)
            else:
                secret = self._memory_key
            key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
            self._key = (wanted, key)
            return key

    def seal(self, data: bytes) -> bytes:
        """``data`` behind its signature header."""
        digest = hmac.new(self.key(), data, hashlib.sha256).hexdigest().encode()
        return HEADER + digest + b"\n" + data

    def open(self, sealed: bytes, what: str) -> bytes:
        """The bytes behind a valid header; ``ResultSignatureError`` naming ``what`` if the
        signature is missing or does not match."""
        head, body = sealed[:_SIGNED_LENGTH], sealed[_SIGNED_LENGTH:]
        if not head.startswith(HEADER) or not head.endswith(b"\n"):
            raise ResultSignatureError(
                f"{what} is not signed (altered, or stored by a Conveyor from before results "
                f"were signed): refusing to unpickle it; rerun the task to store it again"
            )
        expected = hmac.new(self.key(), body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, head[len(HEADER) : -1]):
            raise ResultSignatureError(
                f"{what} was altered or written by another instance: refusing to unpickle it; "
                f"check that this process has the instance's key ({ENV_SECRET_KEY} or the "
                f"file {KEY_FILE} of its home), or rerun the task to store it again"
            )
        return body


class ResultStore:
    def __init__(self, db: Database, blobs: BlobStore, home: Path | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.signer = ResultSigner(home)

    def put(self, run_id: str, task_key: str, value: Any) -> dict[str, Any]:
        """Pickle, sign and store ``value``; return the pointer row to record with the run.

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
        where = store(self.blobs, result_path(run_id, task_key), self.signer.seal(data))
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
                select(results.c.run_id, results.c.task_key, results.c.uri, results.c.data).where(
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
        """The value a pointer row (from ``pointers()`` or a query) stands for.

        Raises:
            ResultSignatureError: its bytes are not signed with this instance's key;
                they are not unpickled.
        """
        data = self.signer.open(fetch(self.blobs, pointer), describe(pointer))
        return pickle.loads(data)


def result_path(run_id: str, task_key: str) -> str:
    """Where the blob of run ``run_id``'s result of ``task_key`` is stored."""
    return f"results/{run_id}/{safe_name(task_key)}.pkl"


def describe(pointer: Any) -> str:
    """How errors name the result a pointer row stands for."""

    def get(name: str) -> Any:
        return pointer.get(name) if isinstance(pointer, dict) else getattr(pointer, name, None)

    task_key, run_id = get("task_key"), get("run_id")
    if task_key is not None and run_id is not None:
        return f"the result of task {task_key!r} of run {run_id}"
    return f"the stored result {get('uri')}"
