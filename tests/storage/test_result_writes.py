"""Blob writes are whole or absent: on a full or read-only disk (a real small tmpfs),
``put`` raises a ``StorageError`` that names the file, the OS error and the fix, and
leaves neither a partial file nor the file it was replacing broken."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import StorageError
from conveyor.storage.blobs import DirectoryBlobStore
from conveyor.storage.instance import Instance
from conveyor.storage.logs import LogStore
from conveyor.storage.results import ResultStore
from tests.disks import files_below, small_disk

MB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB disk."""
    with small_disk(tmp_path / "disk", "2m") as folder:
        yield folder


def _used(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_a_write_that_runs_out_of_space_leaves_nothing_and_names_the_fix(disk: Path) -> None:
    blobs = DirectoryBlobStore(disk)
    with pytest.raises(StorageError) as caught:
        blobs.put("results/run-1/big.pkl", b"x" * (5 * MB))
    message = str(caught.value)
    assert str(disk / "results/run-1/big.pkl") in message
    assert "No space left on device" in message
    assert "free space" in message
    assert "CONVEYOR_HOME" in message
    assert isinstance(caught.value.__cause__, OSError)
    assert files_below(disk) == []
    assert _used(disk) < 64 * 1024  # the space the partial write took is given back


def test_a_failed_replacement_leaves_the_old_file_intact(disk: Path) -> None:
    blobs = DirectoryBlobStore(disk)
    old = os.urandom(MB)
    uri = blobs.put("results/run-1/task.pkl", old)
    with pytest.raises(StorageError, match="No space left on device"):
        blobs.put("results/run-1/task.pkl", b"y" * (5 * MB))
    assert blobs.get(uri) == old
    assert files_below(disk) == ["results/run-1/task.pkl"]


def test_a_read_only_disk_names_the_permissions_fix(tmp_path: Path) -> None:
    with small_disk(tmp_path / "readonly", "1m", read_only=True) as folder:
        with pytest.raises(StorageError) as caught:
            DirectoryBlobStore(folder).put("results/run-1/task.pkl", b"z" * 100_000)
        message = str(caught.value)
        assert str(folder / "results/run-1/task.pkl") in message
        assert "Read-only file system" in message
        assert "writable" in message
        assert "CONVEYOR_HOME" in message


def test_results_and_logs_that_do_not_fit_raise_storage_errors(
    disk: Path, instance: Instance
) -> None:
    blobs = DirectoryBlobStore(disk)
    results, logs = ResultStore(instance.db, blobs), LogStore(instance.db, blobs)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        results.put("run-1", "big", b"r" * (5 * MB))
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(StorageError, match="No space left on device"):
        logs.put("run-1", "big", 1, "stdout", b"l" * (5 * MB))
    assert files_below(disk) == []
    # What fits is still stored, whole.
    pointer = results.put("run-1", "medium", b"m" * 300_000)
    assert pickle.loads(blobs.get(pointer["uri"])) == b"m" * 300_000
    assert files_below(disk) == ["results/run-1/medium.pkl"]
