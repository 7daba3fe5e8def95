"""A result that cannot be written fails its task, like any other failure, on every executor.

The instance's results folder is a real 2 MB tmpfs (``tests.disks``): a 5 MB
result fills it. The task must end ``failure`` with a ``StorageError`` that says
so, leave no partial or temporary file, and the run goes on as after any
failed task: downstream skipped, independent tasks done, the run ``failure``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus, task, workflow
from conveyor.errors import StorageError
from conveyor.execution.executors.dask import DaskExecutor
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from tests.disks import files_below, small_disk

MB = 1024 * 1024


@task
def small() -> int:
    return 1


@task
def medium() -> bytes:
    return b"m" * 300_000


@task
def big(seed: bytes) -> bytes:
    return seed[:1] * (5 * MB)


@task
def after(data: bytes) -> int:
    return len(data)


@workflow
def fills_the_disk() -> None:
    small()
    after(big(medium()))


@pytest.fixture
def results_folder(home: Path) -> Iterator[Path]:
    """``$CONVEYOR_HOME/results`` on a 2 MB disk."""
    with small_disk(home / "results", "2m") as folder:
        yield folder


@pytest.fixture
def on_small_disk(results_folder: Path) -> Iterator[Instance]:
    """The ``CONVEYOR_HOME`` instance, whose results land on the small disk."""
    inst = Instance.from_env()
    yield inst
    inst.close()


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    executor = DaskExecutor(n_workers=1, threads_per_worker=2)
    yield executor
    executor.close()


@pytest.fixture(params=["in_process", "multiprocess", "dask"])
def executor(request: pytest.FixtureRequest) -> object:
    if request.param == "in_process":
        return "in_process"
    if request.param == "multiprocess":
        # Here the worker process writes the large result itself.
        return MultiprocessExecutor(max_workers=2)
    return request.getfixturevalue("dask_executor")


def test_a_result_too_big_for_the_disk_fails_its_task_not_the_run(
    on_small_disk: Instance, results_folder: Path, executor: object
) -> None:
    result = fills_the_disk.run(executor=executor, instance=on_small_disk, raise_on_error=False)

    assert result.status is RunStatus.FAILURE
    assert result.task_status("big") is TaskStatus.FAILURE
    assert result.task_status("after") is TaskStatus.SKIPPED
    assert result.task_status("small") is TaskStatus.SUCCESS
    assert result.task_status("medium") is TaskStatus.SUCCESS
    assert isinstance(result.error, StorageError)
    assert "No space left on device" in str(result.error)
    assert "free space" in str(result.error)

    details = result.details()
    assert not (details.run.error or "").startswith("internal error")
    [attempt] = [t for t in result.task_runs if t.task_key == "big"]
    assert attempt.status is TaskStatus.FAILURE
    assert attempt.error_type == "conveyor.errors.StorageError"
    assert attempt.error_message is not None
    assert "No space left on device" in attempt.error_message
    assert f"results/{result.run_id}/big.pkl" in attempt.error_message
    assert not [t for t in result.task_runs if t.status is TaskStatus.RUNNING]

    # Only the result that fit is on the disk, whole; nothing partial, no temporary file.
    assert files_below(results_folder) == [f"{result.run_id}/medium.pkl"]
    assert on_small_disk.result_store.get(result.run_id, "medium") == b"m" * 300_000
