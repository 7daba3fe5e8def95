"""A task stopped from outside keeps every line it wrote before: timeout, cancel, memory, SIGKILL.

Each task prints, then says so in a file (with its pid), then is stopped
while it waits: the lines are in ``conveyor logs`` (``Instance.logs``) after.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus, task, workflow
from conveyor.definitions.job import Job
from conveyor.execution.executors.dask import DaskExecutor
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from conveyor.execution.result import RunResult
from tests.waiting import wait_until

KEY = "talk_then_wait"


def talk_then_wait(folder: str, how: str) -> None:
    print("first line")
    print("second line")
    print("to stderr", file=sys.stderr)
    Path(folder, "printed").write_text(str(os.getpid()))
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    hog = b"x" * 600_000_000 if how == "memory" else b""
    # Until the test lets it go: a Dask worker's thread runs an abandoned task to its end.
    deadline = time.monotonic() + 60
    while not Path(folder, "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    del hog


def warm_up() -> int:
    return 1


plain = task(talk_then_wait)
timed = task(timeout=5)(talk_then_wait)
hungry = task(memory="300m")(talk_then_wait)
first = task(warm_up)


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[Instance]:
    inst = Instance.at(tmp_path / "home")
    yield inst
    (tmp_path / "release").touch()
    inst.close()


@pytest.fixture
def pool() -> MultiprocessExecutor:
    """A one-worker pool that has imported this module, so a task's timeout starts from
    a warm worker."""
    executor = MultiprocessExecutor(max_workers=1)

    @workflow
    def warm() -> None:
        first()

    assert warm.run(executor=executor, instance=Instance.ephemeral()).success
    return executor


def _job(how: str, folder: Path) -> Job:
    chosen = {"timeout": timed, "memory": hungry}.get(how, plain)

    @workflow
    def stopped() -> None:
        chosen(str(folder), how)

    return stopped


def _run(job: Job, home: Instance, executor: object, how: str, folder: Path) -> RunResult:
    if how != "cancel":
        return job.run(executor=executor, instance=home, raise_on_error=False)
    results: list[RunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            job.run(executor=executor, instance=home, raise_on_error=False)
        )
    )
    runner.start()
    try:
        wait_until((folder / "printed").exists, 60, "the task to print")
        home.cancel_run(home.runs()[0].id)
    finally:
        runner.join(60)
    assert results, "the canceled run did not end"
    return results[0]


def _assert_kept(home: Instance, result: RunResult, how: str) -> None:
    assert result.status is (RunStatus.CANCELED if how == "cancel" else RunStatus.FAILURE)
    [t] = home.run_details(result.run_id).tasks
    assert t.status is (TaskStatus.CANCELED if how == "cancel" else TaskStatus.FAILURE)
    assert home.logs(result.run_id, KEY) == "first line\nsecond line\n"
    assert home.logs(result.run_id, KEY, stderr=True).startswith("to stderr\n")


@pytest.mark.parametrize("how", ["timeout", "cancel", "memory", "sigkill"])
def test_multiprocess_task_keeps_its_lines(
    how: str, tmp_path: Path, kept: Instance, pool: MultiprocessExecutor
) -> None:
    result = _run(_job(how, tmp_path), kept, pool, how, tmp_path)
    _assert_kept(kept, result, how)
    if how != "cancel":
        error = str(result.failures[KEY])
        expected = {"timeout": "timeout", "memory": "memory=", "sigkill": "SIGKILL"}[how]
        assert expected in error
    # Stored with the run, the live files are gone.
    assert not (tmp_path / "home" / "logs" / "live" / result.run_id).exists()


@pytest.fixture
def dask_pool(dask_executor: DaskExecutor) -> DaskExecutor:
    """The session's cluster, its workers having imported this module."""

    @workflow
    def warm() -> None:
        for _ in range(8):
            first()

    assert warm.run(executor=dask_executor, instance=Instance.ephemeral()).success
    return dask_executor


@pytest.mark.parametrize("how", ["timeout", "cancel", "sigkill"])
def test_dask_task_keeps_its_lines(
    how: str, tmp_path: Path, kept: Instance, dask_pool: DaskExecutor
) -> None:
    result = _run(_job(how, tmp_path), kept, dask_pool, how, tmp_path)
    _assert_kept(kept, result, how)


def test_in_process_task_stopped_by_ctrl_c_keeps_its_lines(tmp_path: Path, kept: Instance) -> None:
    @task
    def interrupted() -> None:
        print("before the interrupt")
        raise KeyboardInterrupt

    @workflow
    def wf() -> None:
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        wf.run(instance=kept)
    [run] = kept.runs()
    assert run.status is RunStatus.CANCELED
    assert kept.logs(run.id, "interrupted") == "before the interrupt\n"


def test_canceled_job_body_keeps_its_lines_in_memory_too(tmp_path: Path) -> None:
    """An instance in memory has no live files: the body's capture, in this process, holds
    what it wrote."""
    from conveyor import job

    inst = Instance.ephemeral()

    @job
    def body() -> None:
        print("body says hello")
        (tmp_path / "printed").touch()
        wait_until((tmp_path / "release").exists, 60, "the test to release the body")

    results: list[RunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(body.run(instance=inst, raise_on_error=False))
    )
    runner.start()
    try:
        wait_until((tmp_path / "printed").exists, 60, "the body to print")
        inst.cancel_run(inst.runs()[0].id)
        runner.join(60)
    finally:
        (tmp_path / "release").touch()
        runner.join(60)
    [result] = results
    assert result.status is RunStatus.CANCELED
    assert inst.logs(result.run_id, "body") == "body says hello\n"
    inst.close()
