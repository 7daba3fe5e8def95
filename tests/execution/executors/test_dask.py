"""The Dask executor on a real two-worker cluster: fan-out, resources, crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus, task, workflow
from conveyor.errors import InsufficientResourcesError, WorkerLostError
from conveyor.execution.executors.dask import DaskExecutor
from tests.execution.executors import jobs
from tests.waiting import wait_until


@task
def where(x: int) -> str:
    from distributed import get_worker

    print(f"item {x}")
    return str(get_worker().address)


@task(cpu=2)
def big() -> str:
    from distributed import get_worker

    return str(get_worker().address)


@task
def count(addresses: list[str]) -> int:
    return len(addresses)


@workflow
def fan_out_200() -> None:
    s = jobs.one()
    count([where(s) for _ in range(200)])
    big()


@task(cpu=3)
def too_big() -> int:
    return 0


@workflow
def nowhere() -> None:
    too_big()
    jobs.one()


@pytest.fixture(scope="module")
def two_workers() -> Iterator[tuple[DaskExecutor, str]]:
    """A scheduler with a 1-cpu worker, and a second worker process declaring 2 cpu."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        resources={"cpu": 1},
        dashboard_address=":0",
        processes=True,
    )
    dask_cli = Path(sys.executable).parent / "dask"
    root = Path(__file__).parents[3]
    # As on a real cluster, the job's code must be importable where the worker runs.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    proc = subprocess.Popen(
        [
            str(dask_cli),
            "worker",
            cluster.scheduler_address,
            "--nthreads",
            "2",
            "--resources",
            "cpu=2",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    executor = DaskExecutor(address=cluster.scheduler_address)
    try:
        wait_until(
            lambda: len(executor.client.scheduler_info()["workers"]) >= 2,
            60,
            "the second Dask worker to join",
            every=0.2,
        )
        workers = executor.client.scheduler_info()["workers"]
        [big_worker] = [a for a, w in workers.items() if w["resources"].get("cpu") == 2]
        yield executor, big_worker
    finally:
        executor.close()
        proc.terminate()
        proc.wait(timeout=30)
        cluster.close()


def test_fan_out_of_200_with_logs_results_and_cpu_placement(
    two_workers: tuple[DaskExecutor, str], durable: Instance
) -> None:
    executor, big_worker = two_workers
    result = fan_out_200.run(executor=executor, instance=durable)
    assert result.output("count") == 200
    assert result.output("big") == big_worker
    used = {
        durable.result(result.run_id, f"where_{i}" if i > 1 else "where") for i in range(1, 201)
    }
    assert len(used) == 2  # both workers took part
    assert fan_out_200.logs(result.run_id, "where_57", instance=durable) == "item 1\n"
    assert all(t.status is TaskStatus.SUCCESS for t in result.details().tasks)


def test_a_task_no_worker_can_take_fails_at_once(
    two_workers: tuple[DaskExecutor, str], instance: Instance
) -> None:
    executor, _ = two_workers
    started = time.monotonic()
    result = nowhere.run(executor=executor, instance=instance, raise_on_error=False)
    assert time.monotonic() - started < 10
    error = result.failures["too_big"]
    assert isinstance(error, InsufficientResourcesError)
    assert "cpu=3" in str(error)
    assert result.output("one") == 1


def test_a_worker_that_dies_fails_its_task(dask_executor: DaskExecutor, instance: Instance) -> None:
    @workflow
    def dies() -> None:
        jobs.exits(jobs.one())

    result = dies.run(executor=dask_executor, instance=instance, raise_on_error=False)
    assert result.status is RunStatus.FAILURE
    assert isinstance(result.failures["exits"], WorkerLostError)
