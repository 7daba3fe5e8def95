"""Where log and result bytes live.

Small blobs (up to ``INLINE_LIMIT`` bytes) are kept in their pointer row in
the database, written in the same batch as the run's other records: a file
per task would cost more than the task itself and leave millions of tiny
files behind busy fan-outs. Larger blobs go to a blob store: a directory in
the instance's home by default, memory for ephemeral instances.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from conveyor.errors import NotFoundError

INLINE_LIMIT = 64 * 1024


def safe_name(part: str) -> str:
    """A file-name-safe, reversible form of a key (``extract[3]`` -> ``extract%5B3%5D``)."""
    return quote(part, safe="")


class BlobStore(Protocol):
    """Bytes by relative path."""

    def put(self, path: str, data: bytes) -> str:
        """Store ``data`` and return its URI."""
        ...

    def get(self, uri: str) -> bytes: ...


def store(blobs: BlobStore, path: str, data: bytes) -> dict[str, Any]:
    """The ``uri``/``data``/``size`` columns of a pointer row for ``data``."""
    if len(data) <= INLINE_LIMIT:
        return {"uri": None, "data": data, "size": len(data)}
    return {"uri": blobs.put(path, data), "data": None, "size": len(data)}


def fetch(blobs: BlobStore, pointer: Any) -> bytes:
    """The bytes a pointer row (a mapping or a row) stands for."""
    data = pointer["data"] if isinstance(pointer, dict) else pointer.data
    if data is not None:
        return bytes(data)
    return blobs.get(pointer["uri"] if isinstance(pointer, dict) else pointer.uri)


class DirectoryBlobStore:
    """Blobs as files below ``root``; the URI is the path relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, path: str, data: bytes) -> str:
        target = self.root / path
        try:
            with open(target, "wb") as f:
                f.write(data)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        return path

    def get(self, uri: str) -> bytes:
        try:
            with open(self.root / uri, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError(f"stored file {self.root / uri} is missing") from None


class MemoryBlobStore:
    """Blobs in a dict, for ephemeral instances."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, path: str, data: bytes) -> str:
        with self._lock:
            self._data[path] = data
        return path

    def get(self, uri: str) -> bytes:
        try:
            return self._data[uri]
        except KeyError:
            raise NotFoundError(f"no stored data at {uri!r}") from None
