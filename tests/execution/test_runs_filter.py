"""``runs(start_time=..., end_time=...)``: Datatailr's filters on when a job's runs started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import Instance, task, workflow
from conveyor.definitions import run_facade
from conveyor.errors import ConfigError


@task
def one() -> int:
    return 1


@workflow
def tick() -> None:
    one()


@workflow
def other() -> None:
    one()


def three_runs(instance: Instance) -> list[datetime]:
    """Start times of three runs of ``tick``, oldest first (and one run of ``other``)."""
    for _ in range(3):
        assert tick.run(instance=instance).success
    assert other.run(instance=instance).success
    records = run_facade.runs(tick, limit=10, status=None, instance=instance)
    starts = sorted(r.started_at for r in records if r.started_at is not None)
    assert len(set(starts)) == len(starts) == 3
    return starts


def ids(records: list[Any]) -> list[datetime]:
    return sorted(r.started_at for r in records)


def test_runs_between_two_times(instance: Instance) -> None:
    first, second, third = three_runs(instance)

    def runs(**kw: Any) -> list[datetime]:
        return ids(run_facade.runs(tick, limit=10, status=None, instance=instance, **kw))

    # between the starts, since a stored start is finer than a datetime's microseconds
    a, b = first + (second - first) / 2, second + (third - second) / 2
    assert runs(start_time=a) == [second, third]
    assert runs(end_time=a) == [first]
    assert runs(start_time=first - timedelta(seconds=1), end_time=b) == [first, second]
    # every form of a time: aware and naive (UTC) datetimes, epoch seconds, ISO strings
    assert runs(start_time=a.astimezone(UTC).replace(tzinfo=None)) == [second, third]
    assert runs(start_time=b.timestamp()) == [third]
    assert runs(end_time=b.isoformat()) == [first, second]
    assert runs(start_time=third + timedelta(seconds=1)) == []
    # the status filter still applies
    assert run_facade.runs(tick, limit=10, status="failure", instance=instance, start_time=a) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"start_time": "yesterday"}, "start_time='yesterday': give a datetime"),
        ({"end_time": True}, "end_time=True: give a datetime"),
        ({"end_time": float("nan")}, "UTC epoch seconds, or an ISO string"),
        ({"start_time": [1]}, "start_time=[1]"),
        ({"start_time": 200.0, "end_time": 100.0}, "the start must be before the end"),
    ],
)
def test_bad_times_are_refused(instance: Instance, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_facade.runs(tick, limit=10, status=None, instance=instance, **kw)
    assert message in str(info.value)


def test_the_job_method_takes_the_filters(instance: Instance) -> None:
    first, second, third = three_runs(instance)
    a = first + (second - first) / 2
    assert ids(tick.runs(instance=instance, start_time=a)) == [second, third]  # type: ignore[call-arg]
    assert ids(tick.runs(instance=instance, end_time=a)) == [first]  # type: ignore[call-arg]
