"""Cron expressions: checked and stepped by croniter (``cron``), said in words (``cron_text``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor import ScheduleError
from conveyor.definitions import cron
from conveyor.definitions.cron_text import describe


@pytest.mark.parametrize(
    ("text", "fields"),
    [("@daily", "0 0 * * *"), ("@HOURLY", "0 * * * *"), ("*/5 8-18 * * 1-5", "*/5 8-18 * * 1-5")],
)
def test_check_cron_gives_five_fields(text: str, fields: str) -> None:
    assert cron.check_cron(text) == fields


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "0 0 * * * *", "61 * * * *", "@sometimes", "a b c d e"]
)
def test_check_cron_refuses_what_is_not_five_valid_fields(bad: str) -> None:
    with pytest.raises(ScheduleError, match="not a valid 5-field cron expression"):
        cron.check_cron(bad)


def test_next_and_previous_fire_times_in_a_zone() -> None:
    zone = ZoneInfo("America/New_York")
    after = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 in New York

    fires = cron.next_fire_times("30 8 * * *", zone, after, 2)

    assert [f.isoformat() for f in fires] == [
        "2026-03-02T08:30:00-05:00",
        "2026-03-03T08:30:00-05:00",
    ]
    assert cron.previous_fire_time("30 8 * * *", zone, fires[1]) == fires[0]


def test_a_naive_moment_is_utc() -> None:
    naive = datetime(2026, 1, 1, 10, 15)
    [fire] = cron.next_fire_times("0 * * * *", ZoneInfo("UTC"), naive)
    assert fire == datetime(2026, 1, 1, 11, 0, tzinfo=ZoneInfo("UTC"))


def test_zero_fire_times_and_a_negative_count() -> None:
    assert (
        cron.next_fire_times("@daily", ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC), 0) == []
    )
    with pytest.raises(ScheduleError, match="n must be 0 or more"):
        cron.next_fire_times("@daily", ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC), -1)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 8 * * 1,5", "at 08:00 on Mon and Fri"),
        ("0 8,20 * * *", "at 08:00 and 20:00"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 */2 * * *", "at minute 0 every 2 hours"),
        ("0 0 1 */3 *", "at 00:00 on day 1 every 3 months"),
        ("0 0 1 1 *", "at 00:00 on day 1 in Jan"),
        ("0 0 * * 0", "at 00:00 on Sun"),
    ],
)
def test_describe(expression: str, words: str) -> None:
    assert describe(expression) == words


def test_names_stay_importable_from_schedule() -> None:
    from conveyor.definitions import schedule

    assert schedule.describe is describe
    assert schedule.check_cron is cron.check_cron
    assert schedule.CRON_NICKNAMES is cron.CRON_NICKNAMES
