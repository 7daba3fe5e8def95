"""The local cache of deployed code: each version's archive unpacked once per machine.

Runs load a version's files from here, not from the folder it was deployed from (which
may be gone). A version's folder is ``<cache>/<hash>/``: it is unpacked into a
temporary folder beside it and renamed into place, so a folder that exists is whole,
and of two processes unpacking the same version one rename wins and the other uses
its folder. The archive is checked against its hash before anything is written, and
the cache keeps the most recently used ``CONVEYOR_CODE_CACHE_VERSIONS`` folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import ConfigError, NotFoundError, WorkspaceError
from conveyor.execution.packaging import archive_files, content_hash
from conveyor.storage.deployments import VersionRecord

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance

CACHE_VAR = "CONVEYOR_CODE_CACHE"
LIMIT_VAR = "CONVEYOR_CODE_CACHE_VERSIONS"
DEFAULT_LIMIT = 20
_HASH = re.compile(r"[0-9a-f]{64}")


def cache_root(instance: Instance) -> Path:
    """``CONVEYOR_CODE_CACHE``, else ``<home>/cache/code``, else a folder in the temp folder.

    Not ``<home>/code``: that is where the home's blob store keeps the archives.
    """
    given = os.environ.get(CACHE_VAR, "").strip()
    if given:
        return Path(given).expanduser()
    if instance.home is not None:
        return Path(instance.home) / "cache" / "code"
    return Path(tempfile.gettempdir()) / "conveyor-code"


def cache_limit() -> int:
    """How many versions' folders the cache keeps (``CONVEYOR_CODE_CACHE_VERSIONS``)."""
    text = os.environ.get(LIMIT_VAR, "").strip()
    if not text:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{LIMIT_VAR}={text!r}: give how many versions to keep unpacked, a whole number "
            f"of at least 1 (default {DEFAULT_LIMIT})"
        )
    return value


def materialize(instance: Instance, version: VersionRecord) -> Path:
    """The folder holding ``version``'s files, unpacked from its archive if not yet.

    Raises:
        NotFoundError: the archive is missing from the blob store.
        WorkspaceError: the archive does not match the version's hash (altered or
            damaged), or holds a path leaving its folder.
    """
    root = cache_root(instance)
    folder = root / version.hash
    if not folder.is_dir():
        try:
            data = instance.blobs.get(version.archive_uri)
        except NotFoundError as e:
            raise NotFoundError(
                f"version {version.number}: its archive {version.archive_uri} is missing from "
                f"the blob store ({e}); deploy the code again to store it"
            ) from None
        unpack(data, version.hash, version.requirements, root, f"version {version.number}")
    with contextlib.suppress(OSError):
        os.utime(folder)  # the folder's time says when it was last used
    evict(root, keep=version.hash)
    return folder


def unpack(data: bytes, digest: str, requirements: str | None, root: Path, what: str) -> Path:
    """Unpack the archive ``data`` as ``<root>/<digest>`` (unless it is there) after
    checking that its files and ``requirements`` hash to ``digest``."""
    folder = root / digest
    if folder.is_dir():
        return folder
    files = archive_files(data, what)
    found = content_hash(files, requirements)
    if found != digest:
        raise WorkspaceError(
            f"{what}: its archive's files hash to {found[:12]}, not {digest[:12]}: the "
            f"archive was altered or damaged, so it is refused; deploy the code again"
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{digest}.{secrets.token_hex(4)}.tmp"
    try:
        for path, mode, content in files:
            target = tmp / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(mode)
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
            # Another process unpacked the same version first: use its folder.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def evict(root: Path, *, keep: str) -> list[str]:
    """Remove the least recently used versions' folders past the limit (never ``keep``);
    the hashes removed."""
    limit = cache_limit()
    folders = [p for p in root.iterdir() if p.is_dir() and _HASH.fullmatch(p.name)]
    if len(folders) <= limit:
        return []

    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    removed = []
    for p in sorted(folders, key=used)[: len(folders) - limit]:
        if p.name == keep:
            continue
        # Renamed first, so that no process finds a half-removed folder.
        doomed = root / f".{p.name}.{secrets.token_hex(4)}.old"
        try:
            p.rename(doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(p.name)
    return removed
