"""Rerun says when there is nothing to rerun, and takes new config.

A rerun of a run that succeeded would reuse every task and record a run that
did nothing: it is an error that points at ``full=True`` and new config.
With ``run_config``, the tasks whose config changes run again, with what is
downstream of them; the others are reused.
"""

from __future__ import annotations

import pytest

from conveyor import (
    Config,
    ConfigError,
    ExecutionError,
    Instance,
    RunContext,
    StaticPartitions,
    TaskStatus,
    job,
    task,
    workflow,
)

executed: list[str] = []


class Scale(Config):
    factor: int = 1


@task
def load() -> int:
    executed.append("load")
    return 5


@task
def scale(x: int, cfg: Scale) -> int:
    executed.append("scale")
    return x * cfg.factor


@task
def report(x: int) -> str:
    executed.append("report")
    return f"total {x}"


@workflow
def scaled() -> None:
    report(scale(load()))


def _config(factor: int) -> dict[str, object]:
    return {"tasks": {"scale": {"config": {"factor": factor}}}}


def test_a_rerun_of_a_successful_run_says_there_is_nothing_to_rerun(instance: Instance) -> None:
    first = scaled.run(_config(2), instance=instance)
    with pytest.raises(ExecutionError) as caught:
        scaled.rerun(first.run_id, instance=instance)
    message = str(caught.value)
    assert f"run {first.run_id} of job 'scaled' succeeded, so there is nothing to rerun" in message
    assert "full=True" in message
    assert "run_config" in message
    assert [r.id for r in instance.runs("scaled")] == [first.run_id]  # no run recorded
    # the same config, written out in full, changes nothing either
    with pytest.raises(ExecutionError, match="nothing to rerun"):
        scaled.rerun(first.run_id, run_config=_config(2), instance=instance)
    executed.clear()
    again = scaled.rerun(first.run_id, full=True, instance=instance)
    assert executed == ["load", "scale", "report"]
    assert again.output("report") == "total 10"


def test_a_rerun_with_new_config_runs_the_changed_tasks_and_downstream(
    instance: Instance,
) -> None:
    first = scaled.run(_config(2), instance=instance)
    executed.clear()
    second = scaled.rerun(first.run_id, run_config=_config(3), instance=instance)
    assert executed == ["scale", "report"]
    assert second.task_status("load") is TaskStatus.REUSED
    assert second.output("report") == "total 15"
    assert instance.run(second.run_id).run_config == _config(3)
    assert instance.run(second.run_id).parent_run_id == first.run_id
    with pytest.raises(ConfigError, match=r"tasks\.scale\.config\.factor"):
        scaled.rerun(first.run_id, run_config=_config("x"), instance=instance)  # type: ignore[arg-type]


def test_a_job_body_with_new_config_runs_again_in_full(instance: Instance) -> None:
    @task
    def step(n: int) -> int:
        executed.append(f"step{n}")
        return n

    @job
    def body(factor: int = 1) -> int:
        return step(1) * factor  # type: ignore[no-any-return]

    first = body.run(instance=instance)
    with pytest.raises(ExecutionError, match="nothing to rerun"):
        body.rerun(first.run_id, instance=instance)
    executed.clear()
    second = body.rerun(first.run_id, run_config={"config": {"factor": 4}}, instance=instance)
    assert executed == ["step1"]
    assert second.output("body") == 4


def test_a_partitioned_job_needs_a_partition(instance: Instance) -> None:
    @job(partitions=StaticPartitions(["us", "eu"]))
    def regional(context: RunContext) -> str:
        return str(context.partition)

    with pytest.raises(ConfigError) as caught:
        regional.run(instance=instance)
    message = str(caught.value)
    assert "job 'regional' is partitioned, so a run processes one of its keys (us, eu)" in message
    assert "pass partition='us' to run() (--partition us on the command line)" in message
    assert instance.runs("regional") == []
    assert regional.run(partition="eu", instance=instance).output("regional") == "eu"
