"""Time partitions (hourly, daily, weekly, monthly) and MultiPartitions: their keys as time
goes on, the window of a key, and clear errors for bad sets and bad keys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conveyor import (
    ConfigError,
    DailyPartitions,
    DefinitionError,
    HourlyPartitions,
    MonthlyPartitions,
    MultiPartitions,
    StaticPartitions,
    WeeklyPartitions,
    job,
    partition_config,
)
from conveyor.definitions.time_partitions import TimePartitions


def at(text: str) -> float:
    """A moment given in UTC, as the POSIX time the sets take."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_daily_keys_are_the_complete_days_from_the_start() -> None:
    days = DailyPartitions(start="2024-01-01")
    assert days.keys_at(at("2024-01-01T23:59")) == []
    assert days.keys_at(at("2024-01-04T00:00")) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    # the set grows with time: today's day is not a key until it ends
    assert "2024-01-03" not in days.keys_at(at("2024-01-03T12:00"))
    assert days.window("2024-01-02") == (
        datetime(2024, 1, 2, tzinfo=ZoneInfo("UTC")),
        datetime(2024, 1, 3, tzinfo=ZoneInfo("UTC")),
    )
    # iterating asks as of now: every day since 2024 has ended
    assert next(iter(days)) == "2024-01-01"
    assert len(days) > 365


def test_an_end_bounds_the_keys_and_a_start_mid_period_rounds_up() -> None:
    days = DailyPartitions(start="2024-01-01T06:00", end=date(2024, 1, 5))
    assert list(days) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert days == DailyPartitions("2024-01-02", end="2024-01-05")
    assert repr(days) == "DailyPartitions(start='2024-01-02', timezone='UTC', end='2024-01-05')"


def test_hourly_weekly_and_monthly_keys() -> None:
    hours = HourlyPartitions(start="2024-01-01", end="2024-01-01T03:00")
    assert list(hours) == ["2024-01-01-00:00", "2024-01-01-01:00", "2024-01-01-02:00"]
    weeks = WeeklyPartitions(start="2024-01-03", end="2024-02-01")
    # weeks run Monday to Monday, named by their Monday
    assert list(weeks) == ["2024-01-08", "2024-01-15", "2024-01-22"]
    start, end = weeks.window("2024-01-08")
    assert (start.weekday(), (end - start).days) == (0, 7)
    months = MonthlyPartitions(start="2023-11-15", end="2024-04-01")
    assert list(months) == ["2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01"]
    assert months.window("2024-02-01")[1] == datetime(2024, 3, 1, tzinfo=ZoneInfo("UTC"))


def test_periods_follow_the_wall_clock_of_the_time_zone() -> None:
    paris = DailyPartitions(start="2024-03-30", timezone="Europe/Paris", end="2024-04-01")
    start, end = paris.window("2024-03-31")
    # the day clocks go forward has 23 hours, midnight to midnight in Paris (subtracting
    # datetimes of one zone counts wall-clock time, so count in UTC)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 23 * 3600
    assert start.astimezone(UTC) == datetime(2024, 3, 30, 23, tzinfo=UTC)
    # a naive start is in the set's zone: the Paris day is over at 23:00 UTC
    assert paris.keys_at(at("2024-03-30T23:00")) == ["2024-03-30"]
    # the New York hour that does not exist (02:00 on 2024-03-10) is no key
    ny = HourlyPartitions("2024-03-10T01:00", timezone="America/New_York", end="2024-03-10T04:00")
    assert list(ny) == ["2024-03-10-01:00", "2024-03-10-03:00"]
    skipped = HourlyPartitions(
        "2024-03-10T02:00", timezone="America/New_York", end=date(2024, 3, 11)
    )
    assert next(iter(skipped)) == "2024-03-10-03:00"
    with pytest.raises(ConfigError, match="not the start of an hour"):
        ny.check("2024-03-10-02:00", "job 'x'")


def test_the_key_a_tick_runs_is_the_latest_complete_period() -> None:
    days = DailyPartitions(start="2024-01-01")
    assert days.keys_for_tick(at("2024-01-03T00:00")) == ["2024-01-02"]
    assert days.keys_for_tick(at("2024-01-03T17:30")) == ["2024-01-02"]
    assert days.keys_for_tick(at("2024-01-01T12:00")) == []  # the first day has not ended
    months = MonthlyPartitions(start="2024-01-01")
    assert months.keys_for_tick(at("2024-03-01T00:05")) == ["2024-02-01"]
    ended = DailyPartitions(start="2024-01-01", end="2024-01-03")
    assert ended.keys_for_tick(at("2024-01-03T01:00")) == ["2024-01-02"]


def test_keys_between_a_start_and_an_end() -> None:
    days = DailyPartitions(start="2024-01-01", timezone="Europe/Paris")
    assert days.keys_between("2024-01-02", "2024-01-05", "b") == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]
    assert days.keys_between(None, "2024-01-03", "b") == ["2024-01-01", "2024-01-02"]
    with pytest.raises(ConfigError, match="b: start '2024-01-05' must be before end"):
        days.keys_between("2024-01-05", "2024-01-02", "b")
    with pytest.raises(ConfigError, match="b: DailyPartitions: start='soon' is not a date"):
        days.keys_between("soon", None, "b")
    with pytest.raises(ConfigError, match="has no time dimension"):
        StaticPartitions(["us"]).keys_between("2024-01-01", None, "b")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, r"job 'x' is partitioned by day.*pass partition='2024-01-01'"),
        (20240101, "partition 20240101 must be a string like 2024-01-01"),
        ("2024-1-2", r"'2024-1-2' is not a DailyPartitions key; write it as 2024-01-01"),
        ("2024-01-02-13:00", "is not a DailyPartitions key"),
        ("yesterday", "is not a DailyPartitions key"),
        ("2023-12-31", "'2023-12-31' is before the first one, 2024-01-01"),
        ("2024-02-01", r"'2024-02-01' is after the last one, which ends by 2024-02-01"),
    ],
)
def test_bad_daily_keys(key: object, message: str) -> None:
    days = DailyPartitions(start="2024-01-01", end="2024-02-01")
    with pytest.raises(ConfigError, match=message):
        days.check(key, "job 'x'")
    assert key not in days


def test_a_period_that_has_not_ended_is_no_key_yet() -> None:
    days = DailyPartitions(start="2024-01-01")
    assert days.check("2024-01-02", "job 'x'", at=at("2024-01-03T00:00")) == "2024-01-02"
    with pytest.raises(ConfigError, match=r"'2024-01-03' has not ended yet.*a complete day"):
        days.check("2024-01-03", "job 'x'", at=at("2024-01-03T12:00"))
    with pytest.raises(ConfigError, match=r"not the start of a week.*use 2024-01-08"):
        WeeklyPartitions("2024-01-01").check("2024-01-10", "job 'x'")
    with pytest.raises(ConfigError, match=r"not the start of a month.*use 2024-01-01"):
        MonthlyPartitions("2024-01-01").check("2024-01-10", "job 'x'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"start": "soon"}, "start='soon' is not a date; write it as 2024-01-01"),
        ({"start": 2024}, "start=2024 must be a date"),
        ({"start": None}, "start=None must be a date"),
        ({"start": "2024-01-01", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"start": "2024-01-01", "timezone": ""}, "timezone='' must be a name"),
        ({"start": "2024-01-01", "end": "2024-01-01T12:00"}, "leaves no complete period"),
        ({"start": "2024-01-01", "end": "later"}, "end='later' is not a date"),
        ({"start": "0001-01-01"}, "gives more than 1000000 keys"),
        ({"start": "2024-01-01", "timezone": "Europe"}, "unknown timezone 'Europe'"),
        ({"start": "2024-01-01", "timezone": "../etc/passwd"}, "unknown timezone"),
    ],
)
def test_bad_time_partitions(args: dict[str, Any], message: str) -> None:
    kind = HourlyPartitions if args["start"] == "0001-01-01" else DailyPartitions
    with pytest.raises(DefinitionError, match=message):
        kind(**args)


def test_the_base_class_is_no_partition_set() -> None:
    with pytest.raises(DefinitionError, match="use HourlyPartitions, DailyPartitions"):
        TimePartitions("2024-01-01")


def test_multi_partitions_cross_a_time_dimension_with_static_keys() -> None:
    multi = MultiPartitions(
        {"region": StaticPartitions(["us", "eu"]), "date": DailyPartitions("2024-01-01")}
    )
    # dimensions are ordered by name in a key, as in Dagster
    assert multi.keys_at(at("2024-01-03T00:00")) == [
        "2024-01-01|us",
        "2024-01-01|eu",
        "2024-01-02|us",
        "2024-01-02|eu",
    ]
    assert multi.keys_for_tick(at("2024-01-03T05:00")) == ["2024-01-02|us", "2024-01-02|eu"]
    assert multi.dimensions("2024-01-02|eu") == {"date": "2024-01-02", "region": "eu"}
    assert multi.window("2024-01-02|eu") == DailyPartitions("2024-01-01").window("2024-01-02")
    assert multi.keys_between("2024-01-02", "2024-01-03", "b") == ["2024-01-02|us", "2024-01-02|eu"]
    assert multi.check("2024-01-02|us", "job 'x'") == "2024-01-02|us"
    assert "2024-01-02|mars" not in multi
    static = MultiPartitions({"a": StaticPartitions(["1", "2"]), "b": StaticPartitions(["x"])})
    assert list(static) == ["1|x", "2|x"]
    assert static.window("1|x") is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, r"partitioned by date, region.*pass partition='2024-01-01\|us'"),
        ("2024-01-02", r"must have one key per dimension \(date\|region\)"),
        ("2024-01-02|us|x", "must have one key per dimension"),
        ("2024-01-02|mars", r"job 'x' \(dimension 'region'\): unknown partition 'mars'"),
        ("2024-13-01|us", r"job 'x' \(dimension 'date'\): partition '2024-13-01' is not a"),
        (["2024-01-02", "us"], "must be a string like"),
    ],
)
def test_bad_multi_keys(key: object, message: str) -> None:
    multi = MultiPartitions(
        {"date": DailyPartitions("2024-01-01"), "region": StaticPartitions(["us", "eu"])}
    )
    with pytest.raises(ConfigError, match=message):
        multi.check(key, "job 'x'")


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ({}, "give two or more named dimensions"),
        ({"date": DailyPartitions("2024-01-01")}, "give two or more named dimensions"),
        ([("a", StaticPartitions(["1"]))], "give two or more named dimensions"),
        (
            {"day": DailyPartitions("2024-01-01"), "hour": HourlyPartitions("2024-01-01")},
            "'day', 'hour' are all time partitions",
        ),
        ({"a": StaticPartitions(["x|y"]), "b": StaticPartitions(["1"])}, "key 'x|y'.*holds '|'"),
        ({"a": ["x"], "b": StaticPartitions(["1"])}, "dimension 'a' is \\['x'\\]"),
        ({"a b": StaticPartitions(["x"]), "c": StaticPartitions(["1"])}, "'a b' must be an"),
    ],
)
def test_bad_multi_partitions(dims: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        MultiPartitions(dims)


def test_a_job_takes_time_partitions_and_partition_config() -> None:
    @job(
        partitions=DailyPartitions("2024-01-01"),
        config=partition_config(lambda key: {"config": {"day": key}}),
    )
    def daily(day: str = "") -> str:
        return day

    assert daily.partitions == DailyPartitions("2024-01-01")
    assert daily.partition_config is not None
    assert daily.partition_config.config_for("2024-01-05") == {"config": {"day": "2024-01-05"}}
    with pytest.raises(DefinitionError, match="makes config per partition, but the job has no"):

        @job(config=partition_config(lambda key: {}))
        def unpartitioned() -> None: ...

    with pytest.raises(DefinitionError, match="partition_config\\(3\\): give a function"):
        partition_config(3)  # type: ignore[arg-type]
    the_class: Any = DailyPartitions
    with pytest.raises(DefinitionError, match=r"partitions=.*DailyPartitions"):

        @job(partitions=the_class)
        def given_the_class() -> None: ...


def test_variants_keep_or_replace_the_partition_config() -> None:
    @job(
        partitions=DailyPartitions("2024-01-01"),
        config=partition_config(lambda key: {"config": {"day": key}}),
    )
    def daily(day: str = "") -> str:
        return day

    same = daily.to_job(name="same", tags={"team": "a"})
    assert same.partition_config is daily.partition_config
    other = partition_config(lambda key: {"config": {"day": "x" + key}})
    assert daily.to_job(name="other", config=other).partition_config is other
    with pytest.raises(DefinitionError, match="give the variant config=partition_config"):
        daily.to_job(name="plain", config={"config": {"day": "1"}})


def test_partition_config_errors_name_the_key() -> None:
    def broken(key: str) -> Any:
        raise KeyError(key)

    with pytest.raises(ConfigError, match=r"raised KeyError: '2024-01-02' for partition"):
        partition_config(broken).config_for("2024-01-02")
    with pytest.raises(ConfigError, match="returned int for partition '2024-01-02'"):
        partition_config(lambda key: 3).config_for("2024-01-02")
