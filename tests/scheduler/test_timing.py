"""Which ticks are due: table tests of the timing rules, and DST across a whole week."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor.definitions.triggers import Trigger, parse_trigger
from conveyor.scheduler.timing import ON_TIME, due, fire_times, tick_key


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


EVERY = parse_trigger("every:10s")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("last", "since", "now", "catchup", "expected"),
    [
        (None, 100.0, 105.0, "latest", []),  # nothing due yet since the daemon started
        (None, 100.0, 110.0, "latest", [110.0]),
        (110.0, 100.0, 115.0, "latest", []),  # already fired
        (110.0, 100.0, 150.0, "latest", [150.0]),  # missed 120-140: only the newest
        (110.0, 100.0, 150.0, "all", [120.0, 130.0, 140.0, 150.0]),
        (110.0, 100.0, 150.0, "none", [150.0]),  # 150 is on time, not missed
        (110.0, 100.0, 150.0 + ON_TIME + 1, "none", []),  # the newest is missed too
    ],
)
def test_every_ticks(
    last: float | None, since: float, now: float, catchup: str, expected: list[float]
) -> None:
    ticks = due(EVERY, last, since, now, catchup)  # type: ignore[arg-type]
    assert [t.at for t in ticks] == expected
    assert all(t.key == tick_key(EVERY, t.at) for t in ticks)


def test_schedule_and_once_ticks() -> None:
    hourly = parse_trigger("0 * * * *")
    got = fire_times(hourly, ts("2026-01-01T00:30:00"), ts("2026-01-01T03:00:00"), 10)
    assert got == [ts("2026-01-01T01:00:00"), ts("2026-01-01T02:00:00"), ts("2026-01-01T03:00:00")]
    latest = due(hourly, ts("2026-01-01T01:00:00"), 0, ts("2026-01-01T03:10:00"), "latest")
    assert [t.at for t in latest] == [ts("2026-01-01T03:00:00")]
    once = parse_trigger("once:2026-01-02T00:00:00")
    assert due(once, None, ts("2026-01-01T00:00:00"), ts("2026-01-01T12:00:00"), "all") == []
    [fired] = due(once, None, ts("2026-01-01T00:00:00"), ts("2026-01-02T00:00:01"), "all")
    assert fired.at == ts("2026-01-02T00:00:00")
    assert due(once, fired.at, 0, ts("2026-01-05T00:00:00"), "all") == []


def test_berlin_0230_fires_once_a_day_across_both_dst_changes() -> None:
    """A controllable clock steps a minute at a time through March and October weeks."""
    trigger = Trigger("schedule", "30 2 * * *", "Europe/Berlin")
    for first_day in ("2026-03-26T00:00:00", "2026-10-22T00:00:00"):
        start = ts(first_day)
        last: float | None = None
        fired: list[float] = []
        now = start
        while now < start + 7 * 86400:
            now += 60
            for tick in due(trigger, last, start, now, "latest"):
                fired.append(tick.at)
                last = tick.at
        local = [datetime.fromtimestamp(t, UTC).astimezone(BERLIN) for t in fired]
        assert len(fired) == 7, (first_day, local)
        assert len({d.date() for d in local}) == 7
        # 02:30 every day but the spring-forward one, where 02:30 does not exist
        assert sorted({d.strftime("%H:%M") for d in local}) in (["02:30"], ["02:30", "03:00"])
