"""Datatailr's chain written as a schedule: ``Schedule(run_after_job_name=...,
run_after_job_condition=...)`` is the chain trigger ``job.success:`` / ``job.fail:`` /
``job.completed:`` that the daemon already fires."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Schedule, ScheduleError, task, workflow
from conveyor.definitions.triggers import Trigger, parse_trigger, parse_triggers


@pytest.mark.parametrize(
    ("condition", "chain", "name"),
    [
        (None, "job.success:etl", "success"),
        ("success", "job.success:etl", "success"),
        ("on success", "job.success:etl", "success"),
        ("failure", "job.fail:etl", "failure"),
        ("On Failure", "job.fail:etl", "failure"),
        ("failed", "job.fail:etl", "failure"),
        ("completed", "job.completed:etl", "completed"),
        ("on completion", "job.completed:etl", "completed"),
    ],
)
def test_run_after_is_a_chain(condition: str | None, chain: str, name: str) -> None:
    s = Schedule(run_after_job_name="etl", run_after_job_condition=condition)

    assert s.chain == chain
    assert (s.run_after_job_name, s.run_after_job_condition) == ("etl", name)
    assert parse_trigger(s.chain) == Trigger(chain.partition(":")[0], "etl")
    assert str(s) == f"after each {name} of etl"
    assert repr(s) == (f"Schedule(run_after_job_name='etl', run_after_job_condition={name!r})")


def test_a_timed_schedule_has_no_chain() -> None:
    s = Schedule(at_hours=[8])
    assert s.chain is None
    assert (s.run_after_job_name, s.run_after_job_condition) == (None, None)
    assert s.cron == "0 8 * * *"


def test_a_chain_schedule_has_no_cron() -> None:
    s = Schedule(run_after_job_name="etl")
    with pytest.raises(ScheduleError, match="runs after another job and has no cron string"):
        s.get_cron_string()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"run_after_job_name": "etl", "at_hours": [8]},
            "give either run_after_job_name or time fields, not both",
        ),
        (
            {"run_after_job_name": "etl", "cron_expression": "0 8 * * *"},
            "Schedule(run_after_job_name='etl', cron_expression=...)",
        ),
        (
            {"run_after_job_name": "etl", "timezone": "Europe/Berlin"},
            "has no times of its own",
        ),
        ({"run_after_job_condition": "failure"}, "add run_after_job_name='<job name>'"),
        (
            {"run_after_job_name": "etl", "run_after_job_condition": "sometimes"},
            "the condition is 'success', 'failure' or 'completed'",
        ),
        (
            {"run_after_job_name": "etl", "run_after_job_condition": 1},
            "the condition is 'success'",
        ),
        ({"run_after_job_name": ""}, "expected the name of the job to run after"),
        ({"run_after_job_name": 7}, "expected the name of the job to run after"),
        ({"run_after_job_name": "my/job!"}, "is not a job name"),
        ({"run_after_job_uuid": "1234-abcd"}, "write run_after_job_name="),
        ({}, "or run_after_job_name='<job>' to run after a job"),
    ],
)
def test_bad_run_after_fields_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        Schedule(**fields)
    assert message in str(info.value)


@task
def step() -> int:
    return 1


def test_a_workflow_triggered_by_a_run_after_schedule() -> None:
    @workflow(trigger=Schedule(run_after_job_name="etl", run_after_job_condition="failure"))
    def report() -> None:
        step()

    assert report.triggers == (Trigger("job.fail", "etl"),)
    assert parse_triggers(
        [Schedule(run_after_job_name="etl"), Schedule(at_hours=[8])], "report"
    ) == (Trigger("job.success", "etl"), Trigger("schedule", "0 8 * * *", "UTC"))
