"""Job-level task hooks (Dagster's job ``hooks=``): ``on_task_success``/``on_task_failure``
fire once for each task of a run, with that task's context, after the task's own hooks,
on every executor (hooks run in the run's process, whichever process ran the task)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import DefinitionError, Instance, RunStatus, job, task, workflow
from conveyor.execution.executors.multiprocess import MultiprocessExecutor

CALLS: list[tuple[str, ...]] = []


def seen_ok(context: Any) -> None:
    CALLS.append(("job ok", context.task_key, context.job_name))


def seen_bad(context: Any, error: BaseException) -> None:
    CALLS.append(("job bad", context.task_key, f"{type(error).__name__}: {error}"))


def own_ok(context: Any) -> None:
    CALLS.append(("task ok", context.task_key))


@task(on_success=own_ok)
def extract() -> int:
    return 2


@task
def double(x: int) -> int:
    return x * 2


@task
def explode(x: int) -> None:
    raise LookupError(f"no row {x}")


@workflow(on_task_success=seen_ok, on_task_failure=seen_bad)
def flow() -> None:
    explode(double(extract()))


@pytest.fixture(params=["in_process", "multiprocess"])
def executor(request: pytest.FixtureRequest) -> object:
    return "in_process" if request.param == "in_process" else MultiprocessExecutor(max_workers=1)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


def test_job_hooks_fire_for_each_task_after_its_own(executor: object, instance: Instance) -> None:
    result = flow.run(instance=instance, executor=executor, raise_on_error=False)
    assert result.status is RunStatus.FAILURE
    assert CALLS == [
        ("task ok", "extract"),
        ("job ok", "extract", "flow"),
        ("job ok", "double", "flow"),
        ("job bad", "explode", "LookupError: no row 4"),
    ]


def test_with_hooks_makes_a_variant_and_keeps_the_jobs_own(instance: Instance) -> None:
    def extra_ok(context: Any) -> None:
        CALLS.append(("extra ok", context.task_key))

    def extra_bad(context: Any) -> None:  # one parameter: called with the context only
        CALLS.append(("extra bad", context.task_key))

    hooked = flow.with_hooks(on_task_success=[extra_ok], on_task_failure=extra_bad)
    assert hooked is not flow
    assert hooked.name == "flow"
    assert flow.on_task_success == (seen_ok,)
    assert hooked.on_task_success == (seen_ok, extra_ok)
    hooked.run(instance=instance, raise_on_error=False)
    assert CALLS == [
        ("task ok", "extract"),
        ("job ok", "extract", "flow"),
        ("extra ok", "extract"),
        ("job ok", "double", "flow"),
        ("extra ok", "double"),
        ("job bad", "explode", "LookupError: no row 4"),
        ("extra bad", "explode"),
    ]


def test_run_level_hooks_still_fire_once_per_run(instance: Instance) -> None:
    @workflow(on_task_success=seen_ok, on_success=lambda ctx: CALLS.append(("run ok",)))
    def two() -> None:
        double(extract())

    assert two.run(instance=instance).status is RunStatus.SUCCESS
    assert CALLS == [
        ("task ok", "extract"),
        ("job ok", "extract", "two"),
        ("job ok", "double", "two"),
        ("run ok",),
    ]


def test_a_job_bodys_task_calls_fire_the_job_hooks(instance: Instance) -> None:
    @job(on_task_success=seen_ok)
    def body() -> int:
        return int(double(extract()))

    assert body.run(instance=instance).status is RunStatus.SUCCESS
    assert ("job ok", "extract", "body") in CALLS
    assert ("job ok", "double", "body") in CALLS


def test_a_raising_job_hook_is_recorded_and_changes_nothing(instance: Instance) -> None:
    def broken(context: Any) -> None:
        raise RuntimeError("hook exploded")

    @workflow(on_task_success=broken)
    def fine() -> None:
        double(extract())

    result = fine.run(instance=instance)
    assert result.status is RunStatus.SUCCESS
    errors = [e for e in result.details().events if e.kind == "hook_error"]
    assert [e.task_key for e in errors] == ["extract", "double"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_task_success": "notify"}, "on_task_success hooks must be callables"),
        ({"on_task_failure": [print, 3]}, "on_task_failure hooks must be callables, got 3"),
    ],
)
def test_hooks_that_are_not_callables_are_refused(options: Any, message: str) -> None:
    def bad_hooks() -> None:
        extract()

    with pytest.raises(DefinitionError, match=f"@workflow 'bad_hooks': {message}"):
        workflow(**options)(bad_hooks)
    with pytest.raises(DefinitionError, match=rf"flow\.with_hooks\(\): {message}"):
        flow.with_hooks(**options)
