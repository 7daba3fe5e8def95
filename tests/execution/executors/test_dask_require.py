"""``require={"machine": ..., "region": ...}`` on Dask: a machine is what the job's tasks
ask of the workers, a region the workers they may run on; what cannot be met is refused,
when the job is defined where the workers are known, else at once when it runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor import Instance, task, workflow
from conveyor.errors import DefinitionError, InsufficientResourcesError
from conveyor.execution.executors.dask import DaskExecutor, unmet_on

GIB = 2**30


@task
def placed() -> tuple[str, dict[str, float]]:
    """The worker the task ran on, and the resources its Dask task asked for."""
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    asked = worker.state.tasks[thread_state.key].resource_restrictions or {}
    return str(worker.name), dict(asked)


@task(cpu=1)
def modest() -> tuple[str, dict[str, float]]:
    return placed.fn()


@workflow(require={"machine": {"cpu": 2, "memory": "4GiB"}})
def on_a_machine() -> None:
    placed()
    modest()


@workflow(require={"region": "eu"})
def in_europe() -> None:
    for _ in range(12):
        placed()


@workflow(require={"region": "us"})
def in_america() -> None:
    placed()


@workflow(require={"machine": "16cpu-1gb"})
def on_a_huge_machine() -> None:
    placed()


@pytest.fixture(scope="module")
def two_kinds() -> Iterator[DaskExecutor]:
    """A small worker (1 cpu, 1 GB) and a bigger one in region eu (4 cpu, 8 GB)."""
    from distributed import Nanny, Scheduler, SpecCluster

    def worker(nthreads: int, resources: dict[str, float]) -> dict[str, Any]:
        options = {"nthreads": nthreads, "resources": resources, "host": "127.0.0.1"}
        return {"cls": Nanny, "options": options}

    cluster = SpecCluster(
        scheduler={
            "cls": Scheduler,
            "options": {"dashboard_address": ":0", "host": "127.0.0.1"},
        },
        workers={
            "small": worker(2, {"cpu": 1, "memory": 1e9}),
            "eu": worker(2, {"cpu": 4, "memory": 8e9, "region-eu": 1}),
        },
    )
    executor = DaskExecutor(address=cluster.scheduler_address)
    try:
        yield executor
    finally:
        executor.close()
        cluster.close()


def test_a_machine_is_what_each_task_asks_unless_it_asks_itself(
    two_kinds: DaskExecutor, instance: Instance
) -> None:
    result = on_a_machine.run(executor=two_kinds, instance=instance)
    assert result.output("placed") == ("eu", {"cpu": 2.0, "memory": 4.0 * GIB})
    # The task's own cpu wins; the machine's memory is still asked for.
    name, asked = result.output("modest")
    assert asked == {"cpu": 1.0, "memory": 4.0 * GIB}
    assert name == "eu"  # only it has 4 GiB


def test_a_region_keeps_tasks_on_its_workers_without_using_them_up(
    two_kinds: DaskExecutor, instance: Instance
) -> None:
    result = in_europe.run(executor=two_kinds, instance=instance)
    outputs = [result.output("placed" if i == 1 else f"placed_{i}") for i in range(1, 13)]
    assert {name for name, _ in outputs} == {"eu"}
    # The region is a placement, not a resource each task takes a unit of.
    assert all("region-eu" not in asked for _, asked in outputs)


def test_a_region_no_worker_is_in_fails_at_once_with_the_reason(
    two_kinds: DaskExecutor, instance: Instance
) -> None:
    result = in_america.run(executor=two_kinds, instance=instance, raise_on_error=False)
    error = result.failures["placed"]
    assert isinstance(error, InsufficientResourcesError)
    assert "region 'us'" in str(error)
    assert "--resources region-us=1" in str(error)


def test_a_machine_no_worker_has_fails_at_once_with_the_reason(
    two_kinds: DaskExecutor, instance: Instance
) -> None:
    result = on_a_huge_machine.run(executor=two_kinds, instance=instance, raise_on_error=False)
    error = result.failures["placed"]
    assert isinstance(error, InsufficientResourcesError)
    assert "cpu=16" in str(error)
    assert "require=" in str(error)


def test_workers_that_declare_no_resources_cannot_be_trusted_with_a_machine() -> None:
    reason = unmet_on([{}, {}], {"cpu": 2.0}, None)
    assert reason is not None
    assert "declares cpu" in reason
    assert unmet_on([{"cpu": 2}], {"cpu": 2.0}, None) is None
    assert unmet_on([{"cpu": 8}, {"cpu": 1, "region-eu": 1}], {"cpu": 2.0}, "eu") is not None


def test_known_workers_refuse_the_job_when_it_is_defined() -> None:
    # The LocalCluster is not started until a run needs it: its resources are given here.
    executor = DaskExecutor(n_workers=1, resources={"cpu": 2, "memory": 4e9, "region-eu": 1})

    def define(require: dict[str, Any]) -> Any:
        @workflow(require=require, executor=executor)
        def placed_job() -> None:
            placed()

        return placed_job

    assert define({"machine": {"cpu": 2, "memory": "4g"}, "region": "eu"}).require["region"] == "eu"
    with pytest.raises(DefinitionError, match=r"require= cannot be met .*cpu=4"):
        define({"machine": {"cpu": 4}})
    with pytest.raises(DefinitionError, match=r"region 'us'.*region-us=1"):
        define({"region": "us"})
    assert executor._cluster is None  # nothing was started to check


@pytest.mark.parametrize(
    ("require", "says"),
    [
        ({"machine": {"cpu": 2, "gpu": 1}}, "gpu"),
        ({"machine": {"cpu": -1}}, "cores > 0"),
        ({"machine": {"cpu": 0}}, "cores > 0"),
        ({"machine": {"memory": "lots"}}, "memory"),
        ({"machine": "big"}, "'2cpu-8gb'"),
        ({"machine": {}}, "'2cpu-8gb'"),
        ({"region": "eu west"}, "region name"),
        ({"region": "eu,us"}, "region name"),
        ({"region": "eu=1"}, "region name"),
        ({"region": ""}, "non-empty"),
        ({"region": 3}, "non-empty"),
    ],
)
def test_bad_machines_and_regions_are_refused_when_defined(
    require: dict[str, Any], says: str
) -> None:
    with pytest.raises(DefinitionError, match="require") as raised:

        @workflow(require=require)
        def bad() -> None:
            placed()

    assert says in str(raised.value)
