"""The blob store named by a URL (``CONVEYOR_BLOB_URL``), through fsspec.

Unset, blobs live in a folder of the instance's home (``DirectoryBlobStore``).
A URL puts them where every machine of a team reaches them: ``s3://bucket/prefix``
(``pip install 'conveyor[s3]'``), ``gs://`` (gcsfs), ``az://`` (adlfs), or
``file:///shared/folder`` (a network mount). ``CONVEYOR_BLOB_OPTIONS`` is a JSON
object passed to the filesystem (for S3: ``endpoint_url``, ``key``, ``secret``);
S3 also reads the standard ``AWS_*`` variables.

Writes are whole or absent. Object stores (S3, GCS, Azure, memory) make a PUT
visible only once all its bytes are in, so a blob is written in one call;
other filesystems get a temporary name next to the target, then a move.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from typing import Any

from conveyor.errors import ConfigError, NotFoundError, StorageError

ENV_BLOB_URL = "CONVEYOR_BLOB_URL"
ENV_BLOB_OPTIONS = "CONVEYOR_BLOB_OPTIONS"

# Protocols whose single PUT is atomic: readers see the old object or the whole new one.
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"}
# The package each protocol needs, for the error when it is missing.
_PACKAGES = {
    "s3": "s3fs (pip install 'conveyor[s3]')",
    "s3a": "s3fs (pip install 'conveyor[s3]')",
    "gs": "gcsfs (pip install gcsfs)",
    "gcs": "gcsfs (pip install gcsfs)",
    "az": "adlfs (pip install adlfs)",
    "abfs": "adlfs (pip install adlfs)",
    "abfss": "adlfs (pip install adlfs)",
}


class FsspecBlobStore:
    """Blobs below the folder or prefix ``url`` of an fsspec filesystem.

    URIs are paths relative to ``url`` (as ``DirectoryBlobStore``'s are), so
    the pointer rows do not change when the store moves. Errors of the
    filesystem (unreachable endpoint, no permission) are ``StorageError``s
    naming the blob and the URL.
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if not scheme:
            raise ConfigError(
                f"blob store URL {url!r} has no scheme; give one such as s3://bucket/prefix "
                f"or file:///path/to/folder"
            )
        try:
            fs, root = fsspec.core.url_to_fs(url, **(options or {}))
        except ImportError as e:
            package = _PACKAGES.get(scheme, f"the fsspec package for {scheme}://")
            raise ConfigError(
                f"blob store URL {url!r} needs {package}, which is not installed ({e})"
            ) from None
        except ValueError as e:
            raise ConfigError(
                f"blob store URL {url!r}: {e}; use s3://, gs://, az://, file:// or memory://"
            ) from None
        self.fs: Any = fs
        self.root = str(root).rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self.atomic_put = any(p in _ATOMIC_PUT for p in protocols)

    def _full(self, path: str) -> str:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise StorageError(f"blob path {path!r} must be relative and stay below {self.url}")
        return f"{self.root}/{path}"

    def _error(self, doing: str, path: str, error: Exception) -> StorageError:
        return StorageError(
            f"cannot {doing} {path} in the blob store {self.url}: {type(error).__name__}: "
            f"{error}; check that the store is reachable from this machine and that its "
            f"credentials allow it ({ENV_BLOB_URL}, {ENV_BLOB_OPTIONS})"
        )

    def put(self, path: str, data: bytes) -> str:
        """Write ``data`` at ``path`` whole, or raise ``StorageError`` and leave what was
        there; return ``path``."""
        full = self._full(path)
        try:
            if self.atomic_put:
                self.fs.pipe_file(full, data)
                return path
            parent, _, name = full.rpartition("/")
            tmp = f"{parent}/.{name[:200]}.{secrets.token_hex(4)}.tmp"
            self.fs.makedirs(parent, exist_ok=True)
            try:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, full)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(tmp)
                raise
        except Exception as e:
            raise self._error("write", path, e) from e
        return path

    def get(self, uri: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._full(uri)))
        except FileNotFoundError:
            raise NotFoundError(f"stored blob {uri} is missing from {self.url}") from None
        except StorageError:
            raise
        except Exception as e:
            raise self._error("read", uri, e) from e

    def remove(self, uri: str) -> int | None:
        full = self._full(uri)
        self.fs.invalidate_cache(full)
        try:
            size = int(self.fs.info(full)["size"])
            self.fs.rm_file(full)
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._error("remove", uri, e) from e
        return size

    def under(self, prefix: str) -> list[str]:
        folder = self._full(prefix.strip("/"))
        # Listings are cached by some filesystems (s3fs); other machines write here too.
        self.fs.invalidate_cache(folder)
        try:
            found = self.fs.find(folder)
        except FileNotFoundError:
            return []
        except Exception as e:
            raise self._error("list", prefix, e) from e
        start = len(self.root) + 1
        # Temporary files of writes under way start with a dot.
        return sorted(
            str(p)[start:] for p in found if not str(p).rsplit("/", 1)[-1].startswith(".")
        )

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"


def blob_options(text: str | None) -> dict[str, Any]:
    """The options in ``CONVEYOR_BLOB_OPTIONS`` (a JSON object); ``ConfigError`` if not one."""
    if text is None or not text.strip():
        return {}
    try:
        options = json.loads(text)
    except ValueError as e:
        raise ConfigError(
            f"{ENV_BLOB_OPTIONS} is not JSON ({e}); give an object such as "
            f'{{"endpoint_url": "http://127.0.0.1:9000"}}'
        ) from None
    if not isinstance(options, dict):
        raise ConfigError(
            f"{ENV_BLOB_OPTIONS} must be a JSON object of the filesystem's options, not "
            f"{type(options).__name__}"
        )
    return options


def blob_store_from_env() -> FsspecBlobStore | None:
    """The store ``CONVEYOR_BLOB_URL`` names, or None when it is unset (the home's folder)."""
    url = os.environ.get(ENV_BLOB_URL)
    if url is None:
        return None
    if not url.strip():
        raise ConfigError(
            f"{ENV_BLOB_URL} is set but empty; set it to a URL such as s3://bucket/prefix, "
            f"or unset it to keep blobs in the instance's home"
        )
    return FsspecBlobStore(url.strip(), blob_options(os.environ.get(ENV_BLOB_OPTIONS)))
