"""Small real disks for tests of what happens when one is full or read-only.

A tmpfs mounted for the test, not a mock: the same system calls fail the same
way (``ENOSPC``, ``EROFS``) as they do on a real full or read-only disk.
Mounting needs root (or ``CAP_SYS_ADMIN``); where it is refused the test is
skipped, and says why.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str = "2m", *, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``folder`` (made if missing) for the block's duration."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs on {folder}: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode:
            # Busy (a worker process still has its cwd or a file there): detach it now.
            subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=True)


def files_below(folder: Path) -> list[str]:
    """Every file below ``folder``, as sorted relative paths (hidden ones too)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
