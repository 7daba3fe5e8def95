"""The options that cut a job's work into slices: partitions=, interval=, incremental_mode=."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from conveyor import ConfigError, DefinitionError, StaticPartitions, job
from conveyor.definitions.intervals import JobInterval, parse_job_interval


def test_static_partitions() -> None:
    regions = StaticPartitions(["us", "eu"])
    assert list(regions) == ["us", "eu"]
    assert len(regions) == 2
    assert "eu" in regions
    assert "mars" not in regions
    assert regions == StaticPartitions(("us", "eu"))
    assert repr(regions) == "StaticPartitions(['us', 'eu'])"
    assert regions.check("us", "x") == "us"
    with pytest.raises(ConfigError, match="x: unknown partition 'mars'; its keys are us, eu"):
        regions.check("mars", "x")


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ("us", "give a list of keys"),
        (None, "give a list of keys"),
        ([], "give at least one key"),
        (["us", "us"], "'us' is given twice"),
        (["us", ""], "must be a non-empty string"),
        ([" us"], "without surrounding spaces"),
        ([3], "must be a non-empty string"),
        (["a\nb"], "must be printable"),
        (["x" * 300], "at most 255 characters"),
    ],
)
def test_bad_partitions(keys: Any, fragment: str) -> None:
    with pytest.raises(DefinitionError, match=fragment):
        StaticPartitions(keys)


def test_a_job_takes_partitions_as_a_list_too() -> None:
    @job(partitions=["a", "b"])
    def sliced() -> None: ...

    assert sliced.partitions == StaticPartitions(["a", "b"])
    with pytest.raises(DefinitionError, match="@job 'sliced': StaticPartitions: give at least"):
        job(partitions=[], name="sliced")(lambda: None)
    with pytest.raises(DefinitionError, match="must be StaticPartitions"):
        job(partitions="a,b", name="sliced")(lambda: None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ({"start": "2026-01-01"}, JobInterval(datetime(2026, 1, 1, tzinfo=UTC))),
        (
            {"start": date(2026, 1, 1), "end": "2026-02-01T00:00:00+01:00"},
            JobInterval(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, 23, tzinfo=UTC)),
        ),
    ],
)
def test_job_intervals(value: Any, expected: JobInterval | None) -> None:
    assert parse_job_interval(value, "@job 'x'") == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-01-01", "must be a dict such as"),
        ({}, "needs a 'start'"),
        ({"start": None, "end": "2026-01-01"}, "needs a 'start'"),
        ({"start": "2026-01-01", "stop": "2026-02-01"}, "unknown interval key(s) 'stop'"),
        ({"start": "soon"}, "interval start 'soon' is not an ISO date"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "must be before its end"),
        ({"start": "2026-01-01", "end": 5}, "interval end 5: expected an ISO date"),
    ],
)
def test_bad_job_intervals(value: Any, fragment: str) -> None:
    with pytest.raises(DefinitionError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_job_interval(value, "@job 'x'")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"incremental_mode": "all"}, "incremental_mode='all' must be one of latest, interval"),
        ({"interval": {"start": "2026-01-01"}}, "need a schedule or an every: trigger"),
        (
            {"schedule": "@daily", "incremental_mode": "interval"},
            "incremental_mode='interval' needs interval=",
        ),
        (
            {
                "schedule": "@daily",
                "interval": {"start": "2026-01-01"},
                "incremental_mode": "interval",
                "partitions": ["a"],
            },
            "cannot be combined with partitions=",
        ),
    ],
)
def test_bad_incremental_options(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DefinitionError, match=fragment):
        job(**options, name="x")(lambda: None)


def test_the_options_are_part_of_the_version() -> None:
    def body() -> None: ...

    plain = job(name="v", schedule="@daily")(body)
    walked = job(
        name="v",
        schedule="@daily",
        interval={"start": "2026-01-01"},
        incremental_mode="interval",
    )(body)
    sliced = job(name="v", schedule="@daily", partitions=["a"])(body)
    assert len({plain.version, walked.version, sliced.version}) == 3
