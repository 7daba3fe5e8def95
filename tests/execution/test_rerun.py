"""Rerun from failure: only failed and not-run tasks and their downstream execute."""

from __future__ import annotations

import pytest

from conveyor import ExecutionError, Instance, RunStatus, TaskStatus, job, task, workflow

executed: list[str] = []
broken = {"c": True}


@task
def a() -> int:
    executed.append("a")
    return 1


@task
def b(x: int) -> int:
    executed.append("b")
    return x + 10


@task
def c(x: int) -> int:
    executed.append("c")
    if broken["c"]:
        raise RuntimeError("c is broken")
    return x + 100


@task
def d(left: int, right: int) -> int:
    executed.append("d")
    return left + right


@workflow
def diamond() -> None:
    top = a()
    d(b(top), c(top))


def test_diamond_failure_then_rerun_from_failure(durable: Instance) -> None:
    executed.clear()
    broken["c"] = True
    first = diamond.run(instance=durable, raise_on_error=False)
    assert first.status is RunStatus.FAILURE
    assert first.task_status("b") is TaskStatus.SUCCESS
    assert first.task_status("c") is TaskStatus.FAILURE
    assert first.task_status("d") is TaskStatus.SKIPPED
    assert sorted(executed) == ["a", "b", "c"]

    executed.clear()
    broken["c"] = False
    second = diamond.rerun(first.run_id, instance=durable)
    assert second.success
    assert executed == ["c", "d"]
    assert second.task_status("a") is TaskStatus.REUSED
    assert second.task_status("b") is TaskStatus.REUSED
    assert second.output("d") == 11 + 101
    run = durable.run(second.run_id)
    assert run.parent_run_id == first.run_id
    assert run.root_run_id == first.run_id
    assert durable.result(second.run_id, "b") == 11

    executed.clear()
    third = diamond.rerun(second.run_id, full=True, instance=durable)
    assert sorted(executed) == ["a", "b", "c", "d"]
    assert durable.run(third.run_id).root_run_id == first.run_id


def test_rerun_keeps_selection_and_given_inputs(instance: Instance) -> None:
    broken["c"] = True
    first = diamond.run(
        selection=["c", "d"], input_values={"a": 5, "b": 7}, instance=instance, raise_on_error=False
    )
    assert first.task_status("c") is TaskStatus.FAILURE
    broken["c"] = False
    second = diamond.rerun(first.run_id, instance=instance)
    assert second.task_keys == ["c", "d"]
    assert second.output("d") == 7 + 105


def test_rerun_of_a_job_body_reuses_succeeded_steps(instance: Instance) -> None:
    calls: list[str] = []
    fail = {"on": True}

    @task
    def step(n: int) -> int:
        calls.append(f"step{n}")
        if n == 2 and fail["on"]:
            raise ValueError("two")
        return n

    @job
    def dyn() -> int:
        return step(1) + step(2)

    first = dyn.run(instance=instance, raise_on_error=False)
    assert first.task_status("step") is TaskStatus.SUCCESS
    assert first.task_status("step_2") is TaskStatus.FAILURE
    assert first.task_status("dyn") is TaskStatus.FAILURE
    fail["on"] = False
    calls.clear()
    second = dyn.rerun(first.run_id, instance=instance)
    assert calls == ["step2"]
    assert second.task_status("step") is TaskStatus.REUSED
    assert second.output("dyn") == 3


def test_rerun_needs_an_ended_run_of_the_same_job(instance: Instance) -> None:
    from conveyor import NotFoundError

    run = instance.run_store.create(job_name="diamond", job_version="x")
    with pytest.raises(ExecutionError, match="still starting"):
        diamond.rerun(run.id, instance=instance)
    other = instance.run_store.create(job_name="other", job_version="x")
    with pytest.raises(NotFoundError, match="is a run of job 'other'"):
        diamond.rerun(other.id, instance=instance)
