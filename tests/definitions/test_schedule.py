"""Schedule: friendly fields compiled to cron locally, range checks, DST-correct fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor import DefinitionError, Schedule, ScheduleError, job, task, workflow
from conveyor.definitions.triggers import Trigger


@pytest.mark.parametrize(
    ("fields", "cron"),
    [
        (
            {
                "at_minutes": [0, 15, 30, 45],
                "at_hours": [0, 12],
                "weekdays": ["Mon", "Wed", "Fri"],
                "day_of_month": 15,
                "in_month": ["Jan", "Jul"],
            },
            "0,15,30,45 0,12 15 1,7 1,3,5",
        ),
        ({"at_hours": [8]}, "0 8 * * *"),
        ({"weekdays": ["Mon"]}, "0 0 * * 1"),
        ({"every_hour": 3}, "0 */3 * * *"),
        ({"every_month": 2}, "0 0 1 */2 *"),
        ({"every_minute": 5}, "*/5 * * * *"),
        ({"at_minutes": 30}, "30 * * * *"),
        ({"day_of_month": [1, 15]}, "0 0 1,15 * *"),
        ({"in_month": "Dec"}, "0 0 1 12 *"),
        ({"weekdays": ["monday", "SUN", 3, "tues"]}, "0 0 * * 1,2,3,7"),
        ({"in_month": ["january", "JUL", 12]}, "0 0 1 1,7,12 *"),
        ({"at_hours": [23, 8, 8]}, "0 8,23 * * *"),
        ({"at_minutes": [5], "weekdays": ["Sat"]}, "5 * * * 6"),
        ({"cron_expression": "*/10 9-17 * * 1-5"}, "*/10 9-17 * * 1-5"),
        ({"cron_expression": "@daily"}, "0 0 * * *"),
        ({"cron_expression": "@HOURLY"}, "0 * * * *"),
        ({"cron_expression": "@weekly"}, "0 0 * * 0"),
    ],
)
def test_friendly_fields_compile_to_cron(fields: dict[str, Any], cron: str) -> None:
    schedule = Schedule(**fields)
    assert schedule.cron == cron
    assert schedule.get_cron_string() == cron


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "give a cron_expression or at least one field"),
        ({"at_minutes": [60]}, "Schedule(at_minutes=[60]): 60 is out of range; minutes are 0-59"),
        ({"at_minutes": [-1]}, "minutes are 0-59"),
        ({"at_hours": [24]}, "Schedule(at_hours=[24]): 24 is out of range; hours are 0-23"),
        ({"at_hours": 8.5}, "expected a number or a list"),
        ({"at_hours": ["8"]}, "'8' is not a whole number"),
        ({"at_hours": []}, "the list is empty"),
        ({"day_of_month": 0}, "days are 1-31"),
        ({"day_of_month": 32}, "days are 1-31"),
        ({"weekdays": ["Mo"]}, "'Mo' is not a weekday"),
        ({"weekdays": ["Funday"]}, "'Funday' is not a weekday"),
        ({"weekdays": [8]}, "weekdays are 1-7"),
        ({"weekdays": [0]}, "weekdays are 1-7"),
        ({"in_month": ["Janu", "Smarch"]}, "'Smarch' is not a month"),
        ({"in_month": [13]}, "months are 1-12"),
        ({"every_minute": 0}, "the step must be from 1 to 59"),
        ({"every_minute": 60}, "the step must be from 1 to 59"),
        ({"every_hour": 24}, "the step must be from 1 to 23"),
        ({"every_month": 13}, "the step must be from 1 to 12"),
        ({"every_hour": 1.5}, "the step must be a whole number"),
        ({"at_minutes": [0], "every_minute": 5}, "give one of at_minutes and every_minute"),
        ({"at_hours": [1], "every_hour": 2}, "give one of at_hours and every_hour"),
        ({"in_month": [1], "every_month": 2}, "give one of in_month and every_month"),
        ({"cron_expression": "0 8 * * *", "at_hours": [8]}, "not both"),
        ({"cron_expression": "0 25 * * *"}, "not a valid 5-field cron expression"),
        ({"cron_expression": "0 8 * * * *"}, "not a valid 5-field cron expression"),
        ({"cron_expression": 5}, "expected a cron string"),
        ({"at_hours": [8], "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"at_hours": [8], "timezone": ""}, "expected an IANA name"),
    ],
)
def test_each_bad_field_has_its_own_error(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScheduleError) as err:
        Schedule(**fields)
    assert fragment in str(err.value)


FIELD_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 70),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-5, 70), st.text(max_size=8)), max_size=4),
    st.floats(allow_nan=True),
    st.booleans(),
)


@given(
    st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            (
                "at_minutes",
                "every_minute",
                "at_hours",
                "every_hour",
                "weekdays",
                "day_of_month",
                "in_month",
                "every_month",
            ),
            FIELD_VALUES,
        ),
    ),
    st.one_of(st.none(), st.sampled_from(["UTC", "Europe/Berlin", "Nowhere/City", ""])),
    st.one_of(st.just(""), st.text(max_size=20)),
)
def test_no_input_crashes_with_anything_but_schedule_error(
    fields: dict[str, Any], timezone: str | None, cron: str
) -> None:
    try:
        schedule = Schedule(cron_expression=cron, timezone=timezone, **fields)
    except ScheduleError:
        return
    assert len(schedule.cron.split()) == 5
    [fire] = schedule.next_fire_times(datetime(2026, 1, 1, tzinfo=UTC), 1)
    assert fire > datetime(2026, 1, 1, tzinfo=UTC)


def test_readable_strings() -> None:
    assert str(Schedule(at_hours=[8], weekdays=["Mon", "Fri"], timezone="Europe/Berlin")) == (
        "at 08:00 on Mon and Fri (Europe/Berlin)"
    )
    assert str(Schedule(every_minute=15)) == "every 15 minutes (UTC)"
    assert str(Schedule(at_minutes=[0, 30], every_hour=2)) == (
        "at minutes 0 and 30 every 2 hours (UTC)"
    )
    assert str(Schedule(every_month=3)) == "at 00:00 on day 1 every 3 months (UTC)"
    assert str(Schedule(at_hours=[6, 18], in_month=["Jan", "Jul"])) == (
        "at 06:00 and 18:00 in Jan and Jul (UTC)"
    )


def test_fire_times_are_in_the_schedule_time_zone() -> None:
    schedule = Schedule(at_hours=[8], weekdays=["Mon"], timezone="America/New_York")
    fires = schedule.next_fire_times(datetime(2026, 1, 1, tzinfo=UTC), 3)
    assert [f.strftime("%a %H:%M") for f in fires] == ["Mon 08:00"] * 3
    assert [f.astimezone(UTC).hour for f in fires] == [13, 13, 13]
    assert fires[1] - fires[0] == timedelta(days=7)


def _daily_fires(start: datetime, days: int) -> list[datetime]:
    schedule = Schedule(cron_expression="30 2 * * *", timezone="Europe/Berlin")
    return schedule.next_fire_times(start, days)


def test_a_time_skipped_by_dst_fires_once_at_the_next_valid_instant() -> None:
    # 2026-03-29: Berlin's clocks go from 02:00 to 03:00; 02:30 does not exist that day.
    fires = _daily_fires(datetime(2026, 3, 27, 12, tzinfo=UTC), 4)
    assert [f.date().isoformat() for f in fires] == [
        "2026-03-28",
        "2026-03-29",
        "2026-03-30",
        "2026-03-31",
    ]
    assert fires[1].strftime("%H:%M %Z") == "03:00 CEST"
    assert fires[1].astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert [f.strftime("%H:%M") for f in (fires[0], fires[2], fires[3])] == ["02:30"] * 3


def test_a_time_repeated_by_dst_fires_once() -> None:
    # 2026-10-25: Berlin's clocks go from 03:00 back to 02:00; 02:30 happens twice.
    fires = _daily_fires(datetime(2026, 10, 23, 12, tzinfo=UTC), 4)
    assert [f.date().isoformat() for f in fires] == [
        "2026-10-24",
        "2026-10-25",
        "2026-10-26",
        "2026-10-27",
    ]
    assert fires[1].astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # and asking from between the two 02:30s does not fire the repeat
    between = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    [after] = _daily_fires(between, 1)
    assert after.date().isoformat() == "2026-10-26"


@task
def noop() -> None: ...


def test_schedules_as_triggers() -> None:
    @workflow(schedule=Schedule(at_hours=[8], timezone="Europe/Berlin"))
    def morning() -> None:
        noop()

    @job(trigger=[Schedule(every_hour=6), morning.success])
    def follow() -> None: ...

    def twice() -> None: ...

    assert morning.triggers == (Trigger("schedule", "0 8 * * *", "Europe/Berlin"),)
    assert follow.triggers[0] == Trigger("schedule", "0 */6 * * *", "UTC")
    assert str(follow.triggers[1]) == "job.success:morning"
    with pytest.raises(DefinitionError, match="at most one schedule"):
        job(trigger=[Schedule(every_hour=6), "every:1h"])(twice)


def test_require_timezone_puts_cron_strings_in_the_jobs_zone() -> None:
    def body() -> None: ...

    berlin = job(trigger=["0 8 * * *", "tag:nightly"], require={"timezone": "Europe/Berlin"})(body)
    assert berlin.triggers[0] == Trigger("schedule", "0 8 * * *", "Europe/Berlin")
    assert berlin.triggers[1] == Trigger("tag", "nightly")
    own = job(
        schedule=Schedule(at_hours=[8], timezone="Asia/Tokyo"),
        require={"timezone": "Europe/Berlin"},
    )(body)
    assert own.triggers[0].timezone == "Asia/Tokyo"  # a Schedule keeps its own zone
    with pytest.raises(DefinitionError, match="unknown time zone"):
        job(trigger="0 8 * * *", require={"timezone": "Mars/Base"})(body)
    with pytest.raises(DefinitionError, match="unknown require key"):
        job(require={"gpu": 1})(body)


@given(
    st.sampled_from(["* * * * *", "30 2 * * *", "0 */3 * * *", "15 1,2,3 * * 0", "0 0 1 * *"]),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_the_previous_fire_time_is_the_last_of_the_fire_times_before(
    cron: str, timezone: str, moment: datetime
) -> None:
    schedule = Schedule(cron_expression=cron, timezone=timezone)
    previous = schedule.previous_fire_time(moment)
    assert previous < moment
    # no fire time lies between it and the moment
    [following] = schedule.next_fire_times(previous, 1)
    assert following >= moment
