"""Isolation, hard timeouts, memory limits, cpu budgets and the warm pool."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conveyor import Instance, RunResult, RunStatus, TaskStatus
from conveyor.errors import (
    InsufficientResourcesError,
    TaskOutOfMemoryError,
    TaskTimeoutError,
    UserCodeError,
    WorkerLostError,
)
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from tests.execution.executors import jobs
from tests.waiting import wait_until


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(path: Path, seconds: float = 15) -> str:
    def written() -> str:
        text = path.read_text() if path.exists() else ""
        return text if text.strip() else ""

    return wait_until(written, seconds, f"{path} to be written")


def test_os_exit_and_sigkill_fail_clearly_and_siblings_finish(
    instance: Instance, tmp_path: Path
) -> None:
    import threading

    pid_file = tmp_path / "pid"
    killer_done = threading.Event()

    def kill_when_started() -> None:
        pid = int(_wait_for(pid_file))
        psutil.Process(pid).kill()
        killer_done.set()

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    result = jobs.crashes.run(
        {"tasks": {"waits_to_be_killed": {"config": {"path": str(pid_file)}}}},
        executor=MultiprocessExecutor(max_workers=3),
        instance=instance,
        raise_on_error=False,
    )
    killer.join(timeout=5)
    assert killer_done.is_set()
    assert result.status is RunStatus.FAILURE
    exited = result.failures["exits"]
    killed = result.failures["waits_to_be_killed"]
    assert isinstance(exited, WorkerLostError)
    assert "exited with code 1" in str(exited)
    assert isinstance(killed, WorkerLostError)
    assert "killed by SIGKILL" in str(killed)
    assert result.output("slow_sibling") == 2
    statuses = {t.key: t.status for t in result.details().tasks}
    assert TaskStatus.RUNNING not in statuses.values()
    assert TaskStatus.PENDING not in statuses.values()
    # the pool replaced its workers and still runs tasks
    assert (
        jobs.chain.run(executor=MultiprocessExecutor(max_workers=3), instance=instance).output(
            "inc_9"
        )
        == 10
    )


def test_a_timeout_stops_the_whole_process_tree(instance: Instance, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = jobs.times_out.run(
        {"tasks": {"sleeps_with_child": {"config": {"path": str(pid_file)}}}},
        executor=MultiprocessExecutor(max_workers=1),
        instance=instance,
        raise_on_error=False,
    )
    assert time.monotonic() - started < 5
    assert isinstance(result.failures["sleeps_with_child"], TaskTimeoutError)
    worker_pid, child_pid = (int(p) for p in pid_file.read_text().split())
    wait_until(lambda: _gone(worker_pid) and _gone(child_pid), 5, "the worker and its child to end")


def test_memory_over_the_limit_is_out_of_memory(instance: Instance) -> None:
    result = jobs.hogs.run(
        executor=MultiprocessExecutor(max_workers=2), instance=instance, raise_on_error=False
    )
    error = result.failures["hog"]
    assert isinstance(error, TaskOutOfMemoryError)
    assert "more than its memory=100 MB" in str(error)
    assert result.output("one") == 1
    attempt = result.details().task("hog").attempts[0]
    assert attempt.error_type == "conveyor.errors.TaskOutOfMemoryError"


def test_a_task_asking_for_too_much_cpu_fails_at_once(instance: Instance) -> None:
    started = time.monotonic()
    result = jobs.too_greedy.run(
        executor=MultiprocessExecutor(max_workers=2), instance=instance, raise_on_error=False
    )
    assert time.monotonic() - started < 10
    error = result.failures["greedy"]
    assert isinstance(error, InsufficientResourcesError)
    assert "cpu=64" in str(error)
    assert result.output("one") == 1


def test_the_cpu_budget_limits_parallelism(instance: Instance) -> None:
    @jobs.task(cpu=2)
    def heavy(x: int) -> float:
        start = time.time()
        time.sleep(0.3)
        return start

    from conveyor import workflow

    @workflow
    def two_heavy() -> None:
        s = jobs.one()
        heavy(s)
        heavy(s)

    result = two_heavy.run(executor=MultiprocessExecutor(max_workers=2, cpu=2), instance=instance)
    runs = {t.key: t for t in result.details().tasks}
    first, second = sorted([runs["heavy"], runs["heavy_2"]], key=lambda t: t.started_at)
    assert first.ended_at is not None
    assert second.started_at is not None
    assert second.started_at >= first.ended_at


def test_the_pool_is_warm_across_runs(instance: Instance) -> None:
    executor = MultiprocessExecutor(max_workers=2)
    jobs.chain.run(executor=executor, instance=instance)
    pids = {w.pid for w in executor.pool.workers}
    jobs.chain.run(executor=executor, instance=instance)
    assert {w.pid for w in executor.pool.workers} == pids


def test_unpicklable_outputs_fail_clearly(instance: Instance) -> None:
    from conveyor import ExecutionError, task, workflow

    @task
    def make_lock() -> object:
        import threading

        return threading.Lock()

    @workflow
    def locks() -> None:
        make_lock()

    with pytest.raises(ExecutionError, match=r"task 'make_lock' returned a _thread\.lock, which"):
        locks.run(executor=MultiprocessExecutor(max_workers=1), instance=instance)


def _at_once(n: int, run: Callable[[int], RunResult]) -> list[RunResult | BaseException]:
    """``run(i)`` from ``n`` threads, started together."""
    barrier = threading.Barrier(n)
    results: list[RunResult | BaseException] = [RuntimeError("did not end")] * n

    def main(i: int) -> None:
        barrier.wait()
        try:
            results[i] = run(i)
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=main, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_ten_runs_at_once_share_the_pool(durable: Instance) -> None:
    results = _at_once(10, lambda i: jobs.diamond_in_processes.run(instance=durable))
    assert [r for r in results if not isinstance(r, RunResult) or r.output("add") != 4] == []


def test_a_run_closing_its_executor_leaves_the_others_workers(durable: Instance) -> None:
    def run(i: int) -> RunResult:
        executor = MultiprocessExecutor(max_workers=2)
        try:
            return jobs.chain.run(executor=executor, instance=durable)
        finally:
            executor.close()

    results = _at_once(10, run)
    assert [r for r in results if not isinstance(r, RunResult) or r.output("inc_9") != 10] == []


def test_a_task_error_comes_back_with_its_traceback(instance: Instance) -> None:
    result = jobs.fan_out_with_failure.run(
        executor=MultiprocessExecutor(max_workers=2), instance=instance, raise_on_error=False
    )
    error = result.failures["boom"]
    assert isinstance(error, UserCodeError)
    assert isinstance(error.original, ValueError)
    frames = traceback.extract_tb(error.original.__traceback__)
    assert frames[-1].name == "boom"
    assert frames[-1].filename == jobs.__file__
    with pytest.raises(ValueError, match="boom 1") as raised:
        result.raise_error()
    assert traceback.extract_tb(raised.value.__traceback__)[-1].name == "boom"
