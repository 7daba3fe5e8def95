"""``async def`` tasks and job bodies work wherever plain ones do."""

from __future__ import annotations

import asyncio

import pytest

from conveyor import Instance, TaskTimeoutError, job, task, workflow


@task
async def fetch(n: int) -> int:
    await asyncio.sleep(0.01)
    return n * 2


@task
def plus(x: int) -> int:
    return x + 1


@workflow
def wf() -> None:
    plus(fetch(fetch(1)))


def test_async_tasks_in_a_workflow(instance: Instance) -> None:
    assert wf.run(instance=instance).output("plus") == 5


def test_async_job_body_with_async_steps(instance: Instance) -> None:
    @job
    async def body(context) -> int:  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        futures = fetch.map([1, 2, 3])
        return fetch(10) + sum(futures.result())

    result = body.run(instance=instance)
    assert result.output("body") == 20 + 12
    # map reserves the base key for its items: fetch[0], fetch[1]...; the call is fetch_2
    assert result.task_keys[:2] == ["body", "fetch[0]"]
    assert "fetch_2" in result.task_keys


def test_async_timeout(instance: Instance) -> None:
    @task(timeout=0.3)
    async def hangs() -> None:
        await asyncio.sleep(30)

    @workflow
    def slow() -> None:
        hangs()

    with pytest.raises(TaskTimeoutError):
        slow.run(instance=instance)


def test_runs_from_inside_a_running_event_loop(instance: Instance) -> None:
    async def notebook_cell() -> int:
        return wf.run(instance=instance).output("plus")  # type: ignore[no-any-return]

    assert asyncio.run(notebook_cell()) == 5
