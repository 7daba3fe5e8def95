"""Where log and result bytes live.

Small blobs (up to ``INLINE_LIMIT`` bytes) are kept in their pointer row in
the database, written in the same batch as the run's other records: a file
per task would cost more than the task itself and leave millions of tiny
files behind busy fan-outs. Larger blobs go to a blob store: a directory in
the instance's home by default, memory for ephemeral instances.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from conveyor.errors import NotFoundError, StorageError

INLINE_LIMIT = 64 * 1024

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_ACCESS = {errno.EACCES, errno.EPERM, errno.EROFS}


def safe_name(part: str) -> str:
    """A file-name-safe, reversible form of a key (``extract[3]`` -> ``extract%5B3%5D``)."""
    return quote(part, safe="")


class BlobStore(Protocol):
    """Bytes by relative path."""

    def put(self, path: str, data: bytes) -> str:
        """Store ``data`` whole, or raise ``StorageError`` and store nothing; return its URI."""
        ...

    def get(self, uri: str) -> bytes: ...

    def remove(self, uri: str) -> int | None:
        """Remove the blob at ``uri``; return how many bytes that freed, None if it was not
        there."""
        ...

    def under(self, prefix: str) -> list[str]:
        """The URIs of the blobs whose path starts with the folder ``prefix``."""
        ...


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
    """Blobs as files below ``root``; the URI is the path relative to it.

    A file is either whole or absent: ``put`` writes a temporary file next to
    the target, syncs it and renames it into place, so a full disk or a crash
    never leaves a partial blob behind, nor breaks the one it replaces.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, path: str, data: bytes) -> str:
        """Write ``data`` to ``root / path`` atomically and return ``path``.

        Raises:
            StorageError: the file cannot be written (no space, no permission);
                its message names the file, the OS error and a fix. The file
                that was there before, if any, is left as it was.
        """
        target = self.root / path
        # In the target's folder, so that the rename stays on one filesystem.
        tmp = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.tmp")
        try:
            try:
                fd = os.open(tmp, _CREATE, 0o666)
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, _CREATE, 0o666)
        except OSError as e:
            raise self._write_error(target, e) from e
        try:
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise self._write_error(target, e) from e
            raise
        _sync_folder(target.parent)
        return path

    def get(self, uri: str) -> bytes:
        try:
            with open(self.root / uri, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError(f"stored file {self.root / uri} is missing") from None

    def remove(self, uri: str) -> int | None:
        target = self.root / uri
        try:
            size = target.stat().st_size
            target.unlink()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # the run's folder, once it is empty
        return size

    def under(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())

    def _write_error(self, target: Path, error: OSError) -> StorageError:
        reason = error.strerror or str(error)
        if error.errno in _NO_SPACE:
            fix = (
                f"free space on the disk that holds {self.root}, or point CONVEYOR_HOME at a "
                f"folder on a disk with more room"
            )
        elif error.errno in _NO_ACCESS:
            fix = (
                f"check that {self.root} (CONVEYOR_HOME) exists and is writable by this user, "
                f"or point CONVEYOR_HOME at a folder that is"
            )
        else:
            fix = (
                f"check that the disk that holds {self.root} (CONVEYOR_HOME) has free space "
                f"and is writable by this user"
            )
        return StorageError(f"cannot write {target}: {reason}; {fix}")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; best effort, since the data is already synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


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

    def remove(self, uri: str) -> int | None:
        with self._lock:
            data = self._data.pop(uri, None)
        return None if data is None else len(data)

    def under(self, prefix: str) -> list[str]:
        start = prefix.rstrip("/") + "/"
        with self._lock:
            return sorted(k for k in self._data if k.startswith(start))
