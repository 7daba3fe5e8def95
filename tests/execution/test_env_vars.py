"""``env_vars=`` on a task and ``.update_env_vars()`` on a call reach the task's process.

Each executor runs the same workflow: in-process (set in the run's process
around the call), multiprocess workers and Dask workers (set in the worker
around the call); after the call the variables are gone again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from conveyor import Instance, task, workflow
from conveyor.execution.executors.dask import DaskExecutor
from conveyor.execution.executors.multiprocess import MultiprocessExecutor


@task(env_vars={"H5_REGION": "eu", "H5_BATCH": 500, "H5_DRY": True})
def read_env() -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in ("H5_REGION", "H5_BATCH", "H5_DRY", "H5_EXTRA")}


@task
def after(_: object) -> str | None:
    return os.environ.get("H5_REGION")


@workflow
def env_flow() -> None:
    first = read_env()
    read_env().update_env_vars({"H5_REGION": "us", "H5_EXTRA": 1.5})
    after(first)


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    executor = DaskExecutor(n_workers=1, threads_per_worker=1)
    yield executor
    executor.close()


@pytest.fixture(params=["in_process", "multiprocess", "dask"])
def executor(request: pytest.FixtureRequest) -> object:
    if request.param == "in_process":
        return "in_process"
    if request.param == "multiprocess":
        return MultiprocessExecutor(max_workers=1)
    return request.getfixturevalue("dask_executor")


def test_env_vars_are_set_while_the_task_runs(executor: object, instance: Instance) -> None:
    result = env_flow.run(executor=executor, instance=instance)

    assert result.success
    assert result.output("read_env") == {
        "H5_REGION": "eu",
        "H5_BATCH": "500",
        "H5_DRY": "True",
        "H5_EXTRA": None,
    }
    assert result.output("read_env_2") == {
        "H5_REGION": "us",
        "H5_BATCH": "500",
        "H5_DRY": "True",
        "H5_EXTRA": "1.5",
    }
    # restored after the call: the next task (one worker, one thread) does not see them
    assert result.output("after") is None
    assert "H5_REGION" not in os.environ


def test_a_variable_set_before_is_restored(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("H5_REGION", "home")
    result = env_flow.run(instance=instance)

    assert result.output("read_env")["H5_REGION"] == "eu"
    assert result.output("after") == "home"
    assert os.environ["H5_REGION"] == "home"


@task
def job_env() -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in ("H5_TEAM", "H5_REGION")}


@workflow(env_vars={"H5_TEAM": "quants", "H5_REGION": "asia"})
def team_flow() -> None:
    job_env()
    read_env()


def test_a_workflows_env_vars_reach_each_task_and_a_tasks_own_win(instance: Instance) -> None:
    result = team_flow.run(instance=instance)
    assert result.success
    assert result.output("job_env") == {"H5_TEAM": "quants", "H5_REGION": "asia"}
    assert result.output("read_env")["H5_REGION"] == "eu"  # the task's own env_vars win
    assert "H5_TEAM" not in os.environ


def test_a_bad_workflow_env_var_is_refused() -> None:
    from conveyor import DefinitionError

    with pytest.raises(DefinitionError, match="environment variable name 'A=B'"):

        @workflow(env_vars={"A=B": "x"})
        def bad() -> None:
            job_env()
