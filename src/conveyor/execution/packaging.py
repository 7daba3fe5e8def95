"""Packaging a workspace's code into a deterministic, content-addressed archive.

A deployed version is identified by what its files hold, not by when they were
written: the archive's entries are sorted, their times, owners and modes fixed and the
gzip header carries no time, so the same files give the same bytes, and the version's
hash is the SHA-256 of the content list (paths, modes, bytes, and the requirements).

The folder that is packaged is the workspace's folder; when that folder is a Python
package (it holds ``__init__.py``), the folder above the top package, so that the
workspace's ``from mypackage import helpers`` works from the archive too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from conveyor.errors import ConfigError, WorkspaceError

# Folders and files never packaged: tools' caches, virtual environments, the instance.
EXCLUDED_DIRS = frozenset(
    {
        ".git",
        "__pycache__",
        ".venv",
        "venv",
        ".conveyor",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
CONFIG_FOLDER = ".conveyor"
SIZE_LIMIT = 200 * 1024 * 1024
GIT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Package:
    """A workspace's code as an archive.

    Attributes:
        data: the ``.tar.gz`` bytes (the same files give the same bytes).
        hash: SHA-256 of the content list and requirements: the version's address.
        entry: the workspace inside the archive (``pipelines.py``, ``pkg/jobs.py``, or
            ``.`` for a folder workspace at the root).
        root: the folder that was packaged.
        files: how many files the archive holds.
        requirements: the requirements file's text, if any.
        requirements_hash: the hash of its normalized text, if any.
        git: ``{"commit", "dirty", "branch"}`` when the root is in a git work tree.
    """

    data: bytes
    hash: str
    entry: str
    root: Path
    files: int
    requirements: str | None
    requirements_hash: str | None
    git: dict[str, Any] | None

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<Package {self.hash[:12]} {self.entry} ({self.files} files, {self.size} bytes)>"


def package(
    target: str | os.PathLike[str] = ".",
    *,
    requirements: str | os.PathLike[str] | None = None,
    limit: int = SIZE_LIMIT,
) -> Package:
    """Package the workspace ``target`` (a ``.py`` file or a folder).

    The requirements are ``requirements`` if given, else ``requirements.txt`` at the
    packaged root if there is one.

    Raises:
        WorkspaceError: ``target`` is missing or not a Python file or folder, the folder
            holds no Python file, or its files pass ``limit`` bytes.
        ConfigError: ``requirements`` names a missing file.
    """
    path = Path(target).expanduser()
    if not path.exists():
        raise WorkspaceError(
            f"cannot deploy {str(target)!r}: no such file or folder; name a workspace file "
            f"(pipelines.py) or folder"
        )
    path = path.resolve()
    if path.is_file() and path.suffix != ".py":
        raise WorkspaceError(
            f"cannot deploy {str(target)!r}: a workspace is a Python (.py) file or a folder"
        )
    root = package_root(path)
    files = _collect(root, limit, str(target))
    if not any(p.endswith(".py") for p, _, _ in files):
        raise WorkspaceError(
            f"cannot deploy {str(target)!r}: {root} holds no Python file; put the jobs in a "
            f".py file there"
        )
    entry = path.relative_to(root).as_posix()
    req_text = _requirements(root, requirements)
    req_hash = requirements_hash(req_text)
    digest = content_hash(files, req_text)
    return Package(
        data=_archive(files),
        hash=digest,
        entry=entry,
        root=root,
        files=len(files),
        requirements=req_text,
        requirements_hash=req_hash,
        git=git_state(root),
    )


def package_root(path: Path) -> Path:
    """The folder packaged for ``path``: its folder (itself for a folder), climbing
    out of Python packages (folders holding ``__init__.py``) to the top one's parent."""
    folder = path if path.is_dir() else path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def content_hash(files: Iterable[tuple[str, int, bytes]], requirements: str | None) -> str:
    """SHA-256 of ``(path, mode, bytes)`` entries, in path order, and the requirements."""
    h = hashlib.sha256()
    for path, mode, data in sorted(files):
        h.update(f"{path}\0{mode:o}\0{len(data)}\0".encode())
        h.update(data)
    h.update(b"requirements\0" + normalize_requirements(requirements or "").encode())
    return h.hexdigest()


def normalize_requirements(text: str) -> str:
    """The requirements' lines without blanks, comments and surrounding spaces."""
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def requirements_hash(text: str | None) -> str | None:
    """The hash of normalized requirements, ``None`` when there are none."""
    normal = normalize_requirements(text or "")
    return hashlib.sha256(normal.encode()).hexdigest() if normal else None


def archive_files(data: bytes, what: str) -> list[tuple[str, int, bytes]]:
    """The ``(path, mode, bytes)`` entries of an archive made by ``package``.

    Raises:
        WorkspaceError: the archive is not a tar.gz, or holds an entry that is not a
            plain file or whose path leaves the folder (``what`` names the archive).
    """
    out: list[tuple[str, int, bytes]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = member.name
                parts = PurePosixPath(name).parts
                if not member.isfile() or name.startswith("/") or ".." in parts or not parts:
                    raise WorkspaceError(
                        f"{what}: the archive holds {name!r}, which is not a plain file inside "
                        f"its folder; it was not made by `conveyor deploy`, so it is refused"
                    )
                f = tar.extractfile(member)
                assert f is not None  # a regular file has contents
                out.append((name, member.mode & 0o777, f.read()))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise WorkspaceError(f"{what}: the archive cannot be read ({e})") from None
    return out


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"}`` of the git work tree holding ``folder``, or
    ``None`` outside one (or without git). ``dirty``: ``folder`` has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("rev-parse", "--is-inside-work-tree") != "true":
        return None
    status = git("status", "--porcelain", "--", ".")
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": git("rev-parse", "HEAD"),  # None before the first commit
        "dirty": bool(status),
        "branch": None if branch in (None, "HEAD") else branch,
    }


def _collect(root: Path, limit: int, target: str) -> list[tuple[str, int, bytes]]:
    files: list[tuple[str, int, bytes]] = []
    total = 0
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and not (here / d).is_symlink())
        # Of a .conveyor folder, the config files travel with the code (the providers read
        # them beside the deployed files); its secrets, database, logs and results do not.
        shared = here / CONFIG_FOLDER
        extra = [
            f"{CONFIG_FOLDER}/{p.name}"
            for p in (
                sorted(shared.iterdir()) if shared.is_dir() and not shared.is_symlink() else []
            )
            if p.name == "config.toml" or p.name.endswith(".config.toml")
        ]
        for name in [*sorted(names), *extra]:
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            p = here / name
            try:
                info = p.stat()
            except OSError:
                continue  # a dangling link
            if not stat.S_ISREG(info.st_mode):
                continue
            total += info.st_size
            if total > limit:
                raise WorkspaceError(
                    f"cannot deploy {target!r}: the files of {root} pass "
                    f"{limit // (1024 * 1024)} MB; keep data out of the workspace's folder, "
                    f"or deploy a smaller folder"
                )
            mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
            files.append((p.relative_to(root).as_posix(), mode, p.read_bytes()))
    return sorted(files)


def _archive(files: list[tuple[str, int, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, mode, data in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _requirements(root: Path, given: str | os.PathLike[str] | None) -> str | None:
    if given is not None:
        p = Path(given).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"--requirements {str(given)!r}: no such file; name a requirements file "
                f"(requirements.txt), or leave it out"
            )
        return p.read_text()
    default = root / "requirements.txt"
    return default.read_text() if default.is_file() else None
