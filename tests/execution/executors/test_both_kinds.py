"""One engine: a ``@job`` body's steps run like a ``@workflow``'s, on every executor.

Each test runs the same work written both ways (``both.py``) on the three
executors: where a step runs, retries, timeouts, memory limits, pools,
steps at once and cancels.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus
from conveyor.errors import TaskOutOfMemoryError, TaskTimeoutError
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from tests.execution.executors import both
from tests.execution.executors.test_pools import most_at_once
from tests.waiting import wait_until

KINDS = ["graph", "body"]


@pytest.fixture(params=KINDS)
def written_as(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def executor_name(executor: object) -> str:
    return executor if isinstance(executor, str) else executor.name  # type: ignore[attr-defined,no-any-return]


def test_steps_run_where_the_executor_runs_them(
    executor: object, written_as: str, instance: Instance
) -> None:
    job = getattr(both, f"pid_{written_as}")
    result = job.run(executor=executor, instance=instance)
    if executor_name(executor) == "in_process":
        assert result.output("pid") == os.getpid()
    else:
        assert result.output("pid") != os.getpid()


def test_retries(executor: object, written_as: str, instance: Instance, tmp_path: Path) -> None:
    job = getattr(both, f"flaky_{written_as}")
    result = job.run(
        {"tasks": {"flaky": {"config": {"path": str(tmp_path / "marker")}}}},
        executor=executor,
        instance=instance,
    )
    assert result.output("flaky") == "ok"
    attempts = [r.status for r in result.task_runs if r.task_key == "flaky"]
    assert attempts == [TaskStatus.UP_FOR_RETRY, TaskStatus.SUCCESS]


def test_timeouts(executor: object, written_as: str, instance: Instance) -> None:
    job = getattr(both, f"late_{written_as}")
    started = time.monotonic()
    result = job.run(executor=executor, instance=instance, raise_on_error=False)
    took = time.monotonic() - started
    assert isinstance(result.failures["late"], TaskTimeoutError)
    assert "ran past its timeout of 0.5s" in str(result.failures["late"])
    assert result.output("quick") == 1
    assert result.task_status("late") is TaskStatus.FAILURE
    if executor_name(executor) == "in_process":
        # Cooperative: nothing interrupts a step in the run's process; it fails on return.
        assert took >= both.LATE_SLEEP
    else:
        # Stopped (multiprocess) or given up on (Dask) at its timeout.
        assert took < both.LATE_SLEEP


@pytest.mark.parametrize("written", KINDS)
@pytest.mark.parametrize("where", ["in_process", "multiprocess"])
def test_memory_limits(written: str, where: str, instance: Instance) -> None:
    job = getattr(both, f"hog_{written}")
    executor = MultiprocessExecutor(max_workers=2) if where == "multiprocess" else where
    result = job.run(executor=executor, instance=instance, raise_on_error=False)
    error = result.failures["hog"]
    assert isinstance(error, TaskOutOfMemoryError)
    assert "more than its memory=100 MB" in str(error)
    assert result.task_status("hog") is TaskStatus.FAILURE
    assert result.output("quick") == 1
    if where == "in_process":
        # Measured, not stopped: the step ran to its end and failed when it returned.
        assert "failed when it returned" in str(error)


def test_a_step_within_its_memory_succeeds_in_process(instance: Instance) -> None:
    result = both.modest_graph.run(instance=instance)
    assert result.output("modest") == 10 * 1024**2


def test_pools(executor: object, written_as: str, durable: Instance) -> None:
    durable.pool_store.set("db", 1)
    job = getattr(both, f"queries_{written_as}")
    result = job.run(executor=executor, instance=durable)
    assert result.output("collect") == 6
    tasks = durable.run_details(result.run_id).tasks
    attempts = [a for t in tasks for a in t.attempts if a.task_name == "query"]
    assert len(attempts) == 4
    assert most_at_once(attempts) == 1
    assert durable.lease_store.held("pool:db") == []


@pytest.mark.parametrize("written", KINDS)
def test_steps_run_at_once_on_process_executors(
    written: str, instance: Instance, tmp_path: Path, dask_executor: object
) -> None:
    for executor in (MultiprocessExecutor(max_workers=2), dask_executor):
        folder = tmp_path / executor_name(executor)
        folder.mkdir()
        job = getattr(both, f"meet_{written}")
        config = {"config": {"folder": str(folder)}}
        result = job.run(
            {"tasks": {"meet": config, "meet_2": config}}, executor=executor, instance=instance
        )
        assert result.task_status("meet") is TaskStatus.SUCCESS
        assert result.task_status("meet_2") is TaskStatus.SUCCESS
        pids = {(folder / n).read_text() for n in ("a", "b")}
        assert str(os.getpid()) not in pids


def test_a_cancel_stops_the_run_between_steps(
    executor: object, written_as: str, durable: Instance
) -> None:
    job = getattr(both, f"steps_{written_as}")

    def two_steps_done() -> str | None:
        runs = durable.runs(job.name, limit=1)
        if not runs:
            return None
        steps = [t for t in durable.run_details(runs[0].id).tasks if t.key.startswith("step")]
        return runs[0].id if sum(t.status is TaskStatus.SUCCESS for t in steps) >= 2 else None

    def cancel() -> None:
        durable.cancel_run(wait_until(two_steps_done, 60, "two steps to succeed"))

    canceller = threading.Thread(target=cancel, daemon=True)
    canceller.start()
    started = time.monotonic()
    result = job.run(executor=executor, instance=durable, raise_on_error=False)
    canceller.join(timeout=5)
    assert result.status is RunStatus.CANCELED
    assert time.monotonic() - started < 8  # 30 steps of 0.3 s would take 9 s
    statuses = {t.key: t.status for t in durable.run_details(result.run_id).tasks}
    assert TaskStatus.RUNNING not in statuses.values()
    assert TaskStatus.PENDING not in statuses.values()
    assert "step_30" not in statuses or statuses["step_30"] is not TaskStatus.SUCCESS


def test_an_earlier_higher_peak_does_not_hide_a_steps_growth_in_process(
    instance: Instance,
) -> None:
    """The process's peak is reset when an in-process step starts: a step that allocates
    and frees within one call is caught even after the process once peaked higher."""
    spike = b"x" * (1200 * 1024**2)
    del spike
    result = both.hog_body.run(instance=instance, raise_on_error=False)
    assert isinstance(result.failures["hog"], TaskOutOfMemoryError)
