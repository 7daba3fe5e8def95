"""Running workflows in-process: outputs, statuses, failures, raise_on_error, recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor import (
    ConfigError,
    Instance,
    MissingInputError,
    NotFoundError,
    RunStatus,
    SelectionError,
    TaskStatus,
    UserCodeError,
    job,
    task,
    workflow,
)


@task
def return_five() -> int:
    return 5


@task
def add_one(x: int) -> int:
    return x + 1


@workflow
def do_stuff() -> None:
    add_one(return_five())


def test_the_classic_example(durable: Instance) -> None:
    result = do_stuff.run(instance=durable)
    assert result.success
    assert result.status is RunStatus.SUCCESS
    assert result.output("add_one") == 6
    assert result.task_status("return_five") is TaskStatus.SUCCESS
    assert [r.task_key for r in result.task_runs] == ["return_five", "add_one"]
    [run] = do_stuff.runs(instance=durable)
    assert run.id == result.run_id
    assert run.job_version == do_stuff.version
    assert do_stuff.result(result.run_id, "add_one", instance=durable) == 6


def test_runs_without_an_instance_use_the_default(home: Path) -> None:
    result = do_stuff.run()
    assert (home / "conveyor.db").exists()
    assert [r.id for r in do_stuff.runs()] == [result.run_id]
    details = do_stuff.run_details(result.run_id)
    assert details.task("add_one").depends_on == ["return_five"]


@task
def boom(x: int) -> int:
    raise KeyError(f"no {x}")


@task
def after(x: int) -> int:
    return x


@workflow
def failing() -> None:
    five = return_five()
    after(boom(five))
    add_one(five)


def test_a_failure_raises_the_tasks_own_exception(instance: Instance) -> None:
    with pytest.raises(KeyError, match="no 5") as err:
        failing.run(instance=instance)
    assert "boom" in "".join(__import__("traceback").format_tb(err.value.__traceback__))
    [run] = failing.runs(instance=instance)
    assert run.status is RunStatus.FAILURE
    assert run.error is not None
    assert "task 'boom' raised KeyError" in run.error


def test_downstream_is_skipped_and_independent_branches_run(instance: Instance) -> None:
    result = failing.run(instance=instance, raise_on_error=False)
    assert not result.success
    assert result.task_status("boom") is TaskStatus.FAILURE
    assert result.task_status("after") is TaskStatus.SKIPPED
    assert result.task_status("add_one") is TaskStatus.SUCCESS
    assert isinstance(result.error, UserCodeError)
    assert isinstance(result.error.original, KeyError)
    assert "Traceback" in result.error.traceback_text
    details = result.details()
    skipped = details.task("after").attempts[0]
    assert skipped.error_message == "not run: upstream task 'boom' failed"
    assert [e.kind for e in details.events] == ["task_failure"]
    with pytest.raises(NotFoundError, match="its status is skipped"):
        result.output("after")
    with pytest.raises(NotFoundError, match="has no task 'nope'"):
        result.output("nope")
    tb = failing.logs(result.run_id, "boom", stderr=True, instance=instance)
    assert tb.rstrip().endswith("KeyError: 'no 5'")


def test_selection_and_input_values(instance: Instance) -> None:
    assert (
        do_stuff.run(
            selection="add_one", input_values={"return_five": 41}, instance=instance
        ).output("add_one")
        == 42
    )
    only = do_stuff.run(selection="return_five", instance=instance)
    assert only.task_keys == ["return_five"]
    with pytest.raises(MissingInputError, match=r"input_values=\{'return_five': \.\.\.\}"):
        do_stuff.run(selection="add_one", instance=instance)
    with pytest.raises(SelectionError, match="no task 'add_two'"):
        do_stuff.run(selection="add_two", instance=instance)
    # bad input is refused before anything is recorded
    assert len(do_stuff.runs(instance=instance)) == 2


def test_selection_on_a_job_body_is_refused(instance: Instance) -> None:
    @job
    def body() -> None: ...

    with pytest.raises(SelectionError, match="makes its steps at run time"):
        body.run(selection="x", instance=instance)


def test_tags_are_merged_and_checked(instance: Instance) -> None:
    @workflow(tags={"team": "quant"})
    def tagged() -> None:
        return_five()

    result = tagged.run(tags={"env": "dev"}, instance=instance)
    [run] = tagged.runs(instance=instance)
    assert run.tags == {"team": "quant", "env": "dev"}
    assert result.success
    from conveyor import ConfigError

    with pytest.raises(ConfigError, match="tags map strings to strings"):
        tagged.run(tags={"n": 1}, instance=instance)  # type: ignore[dict-item]


def test_runs_can_not_nest(instance: Instance) -> None:
    @job
    def outer() -> None:
        do_stuff.run(instance=instance)

    from conveyor import ExecutionError

    with pytest.raises(ExecutionError, match="cannot be run from inside"):
        outer.run(instance=instance)


@pytest.mark.parametrize(
    ("interval", "fragment"),
    [
        (5, "must be a (start, end) pair"),
        (("2026-01-01",), "must be a (start, end) pair"),
        (("soon", "2026-01-02"), "interval start 'soon' is not an ISO date"),
        (("2026-01-02", "2026-01-01"), "start must be before end"),
    ],
)
def test_a_run_by_hand_with_a_bad_interval_is_refused(interval: Any, fragment: str) -> None:
    @job(name="by_hand")
    def by_hand() -> None: ...

    instance = Instance.ephemeral()
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        by_hand.run(interval=interval, instance=instance)
    assert instance.runs(limit=5) == []  # nothing was recorded
    instance.close()
