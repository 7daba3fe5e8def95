"""Blob stores: bytes by relative path, whole or absent, inline when small.

On a full or read-only disk (a real small tmpfs), ``DirectoryBlobStore.put``
raises a ``StorageError`` that names the file, the OS error and the fix, and
leaves neither a partial file nor the file it was replacing broken.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import NotFoundError, StorageError
from conveyor.storage.blobs import (
    INLINE_LIMIT,
    BlobStore,
    DirectoryBlobStore,
    MemoryBlobStore,
    fetch,
    safe_name,
    store,
)
from conveyor.storage.instance import Instance
from conveyor.storage.logs import LogStore
from conveyor.storage.results import ResultStore
from tests.disks import files_below, small_disk

MB = 1024 * 1024


@pytest.fixture(params=["directory", "memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "directory":
        return DirectoryBlobStore(tmp_path / "blobs")
    return MemoryBlobStore()


def test_put_then_get_and_replace(blobs: BlobStore) -> None:
    uri = blobs.put("results/r1/t.pkl", b"one")
    assert blobs.get(uri) == b"one"
    assert blobs.put("results/r1/t.pkl", b"two") == uri
    assert blobs.get(uri) == b"two"
    assert blobs.get(blobs.put("logs/r1/empty.out", b"")) == b""


def test_a_missing_blob_is_not_found_and_named(blobs: BlobStore) -> None:
    with pytest.raises(NotFoundError, match=r"results/r1/nope\.pkl"):
        blobs.get("results/r1/nope.pkl")


def test_racing_puts_of_one_path_leave_one_whole_blob(tmp_path: Path) -> None:
    blobs = DirectoryBlobStore(tmp_path)
    values = [bytes([i]) * 200_000 for i in range(4)]
    start = threading.Barrier(len(values))

    def put(data: bytes) -> None:
        start.wait(timeout=30)
        blobs.put("results/r1/t.pkl", data)

    threads = [threading.Thread(target=put, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert blobs.get("results/r1/t.pkl") in values
    assert files_below(tmp_path) == ["results/r1/t.pkl"]  # no temporary file left


def test_safe_names_are_file_names_and_distinct() -> None:
    keys = ["extract[3]", "a/b", "..", "a b", "ü", "extract%5B3%5D"]
    names = [safe_name(k) for k in keys]
    assert safe_name("extract[3]") == "extract%5B3%5D"
    assert all("/" not in n for n in names)
    assert len(set(names)) == len(names)


def test_up_to_the_inline_limit_bytes_stay_in_the_row() -> None:
    memory = MemoryBlobStore()
    inline = store(memory, "p", b"x" * INLINE_LIMIT)
    assert inline == {"uri": None, "data": b"x" * INLINE_LIMIT, "size": INLINE_LIMIT}
    outside = store(memory, "p", b"y" * (INLINE_LIMIT + 1))
    assert (outside["uri"], outside["data"]) == ("p", None)
    assert fetch(memory, inline) == b"x" * INLINE_LIMIT
    assert fetch(memory, outside) == b"y" * (INLINE_LIMIT + 1)


# -- a full or read-only disk ------------------------------------------------------------------
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
    assert results.load(pointer) == b"m" * 300_000
    assert files_below(disk) == ["results/run-1/medium.pkl"]
