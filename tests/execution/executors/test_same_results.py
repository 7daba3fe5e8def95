"""The same workflows give the same results on every executor."""

from __future__ import annotations

from pathlib import Path

from conveyor import Instance, RunStatus, TaskStatus
from tests.execution.executors import jobs


def test_chain(executor: object, durable: Instance) -> None:
    result = jobs.chain.run(executor=executor, instance=durable)
    assert result.output("inc_9") == 10
    assert jobs.chain.logs(result.run_id, "inc_4", instance=durable) == "inc 4\n"


def test_diamond(executor: object, instance: Instance) -> None:
    result = jobs.diamond.run(executor=executor, instance=instance)
    assert result.output("add") == 4


def test_fan_out_with_a_failing_branch(executor: object, instance: Instance) -> None:
    result = jobs.fan_out_with_failure.run(
        executor=executor, instance=instance, raise_on_error=False
    )
    assert result.status is RunStatus.FAILURE
    assert result.output("total") == 40
    assert result.task_status("boom") is TaskStatus.FAILURE
    assert result.task_status("inc_21") is TaskStatus.SKIPPED
    error = result.failures["boom"]
    assert "ValueError: boom 1" in str(error)
    tb = jobs.fan_out_with_failure.logs(result.run_id, "boom", stderr=True, instance=instance)
    assert "ValueError: boom 1" in tb


def test_retries(executor: object, instance: Instance, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = jobs.retried.run(
        {"tasks": {"flaky": {"config": {"path": str(marker)}}}},
        executor=executor,
        instance=instance,
    )
    assert result.output("flaky") == "ok"
    attempts = [r.status for r in result.task_runs if r.task_key == "flaky"]
    assert attempts == [TaskStatus.UP_FOR_RETRY, TaskStatus.SUCCESS]


def test_config_and_resources(executor: object, instance: Instance) -> None:
    run_config = {"tasks": {"scaled": {"config": {"factor": 5}}}}
    assert (
        jobs.configured.run(run_config, executor=executor, instance=instance).output("scaled") == 5
    )
    result = jobs.with_resource.run(
        {"resources": {"counter": {"start": 7}}}, executor=executor, instance=instance
    )
    assert result.output("use_counter") == 8


def test_rerun(executor: object, instance: Instance) -> None:
    first = jobs.fan_out_with_failure.run(
        executor=executor, instance=instance, raise_on_error=False
    )
    again = jobs.fan_out_with_failure.rerun(
        first.run_id, executor=executor, instance=instance, raise_on_error=False
    )
    assert again.task_status("total") is TaskStatus.REUSED
    assert again.task_status("inc") is TaskStatus.REUSED
    assert again.task_status("boom") is TaskStatus.FAILURE
    assert again.output("total") == 40
