"""A job's options are checked once, by ``job_options``, into a frozen ``JobOptions``."""

from __future__ import annotations

import dataclasses

import pytest

from conveyor import DefinitionError, RetryPolicy, Schedule, job
from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.job_options import JobOptions, job_options
from conveyor.definitions.triggers import Trigger


def body() -> None:
    """Loads the day's rows."""


def test_defaults() -> None:
    options = job_options(body, "job", {})

    assert options.name == "body"
    assert options.description == "Loads the day's rows."
    assert options.triggers == ()
    assert options.execute == ExecuteOptions()
    assert (options.catchup, options.refresh, options.incremental_mode) == (
        "latest",
        "auto",
        "latest",
    )
    assert options.timed_trigger is None


def test_schedule_and_triggers_make_one_list_in_the_required_zone() -> None:
    options = job_options(
        body,
        "workflow",
        {
            "schedule": "0 8 * * *",
            "trigger": "job.success:upstream",
            "require": {"timezone": "Europe/Berlin"},
        },
    )

    assert options.triggers == (
        Trigger("schedule", "0 8 * * *", "Europe/Berlin"),
        Trigger("job.success", "upstream"),
    )
    assert options.timed_trigger == options.triggers[0]


def test_a_schedule_keeps_its_own_zone() -> None:
    options = job_options(
        body,
        "job",
        {"trigger": [Schedule(at_hours=9, timezone="UTC")], "require": {"timezone": "Asia/Tokyo"}},
    )
    assert options.triggers == (Trigger("schedule", "0 9 * * *", "UTC"),)


def test_the_options_are_frozen_and_the_job_shows_them() -> None:
    @job(tags=["nightly"], retry=RetryPolicy(max_retries=2), pool="warehouse")
    def nightly() -> None: ...

    assert isinstance(nightly.options, JobOptions)
    assert nightly.tags == nightly.options.tags == {"nightly": ""}
    assert nightly.pool == "warehouse"
    assert nightly.retry == RetryPolicy(max_retries=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        nightly.options.pool = "other"  # type: ignore[misc]


def test_an_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(DefinitionError) as err:
        job_options(body, "job", {"shedule": "@daily"})  # type: ignore[typeddict-unknown-key]

    message = str(err.value)
    assert message.startswith("@job 'body': unknown option(s) 'shedule'")
    assert "schedule" in message.split("known:")[1]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"catchup": "some"}, "catchup='some' must be one of latest, all, none"),
        ({"refresh": "never"}, "refresh='never' must be one of auto, always, block"),
        ({"incremental_mode": "sometimes"}, "incremental_mode='sometimes' must be one of"),
        ({"interval": {"start": "2026-01-01"}}, "need a schedule or an every: trigger"),
        (
            {"schedule": "@daily", "incremental_mode": "interval"},
            "needs interval={'start': ..., 'end': None}",
        ),
        (
            {
                "schedule": "@daily",
                "incremental_mode": "interval",
                "interval": {"start": "2026-01-01"},
                "partitions": ["a", "b"],
            },
            "cannot be combined with partitions=",
        ),
        ({"require": {"timezone": "Mars/Olympus"}}, "require={'timezone': 'Mars/Olympus'}"),
        ({"name": 7}, "a job name may hold letters"),
        ({"on_success": "notify"}, "on_success hooks must be callables"),
    ],
)
def test_each_bad_option_is_named_with_its_fix(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(DefinitionError) as err:
        job_options(body, "job", options)  # type: ignore[arg-type]
    assert fragment in str(err.value)
