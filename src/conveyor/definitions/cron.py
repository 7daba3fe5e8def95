"""Cron expressions, checked and evaluated with croniter, in an IANA time zone.

Everything the project asks of a cron expression goes through here: whether it
is valid, and when it fires next or fired last. croniter parses and steps the
expression; this module adds what croniter leaves to its caller, the time zone
rules: wall-clock times are matched in the zone, a time that a DST change
skips fires once at the first valid instant after the gap, and a time that a
DST change repeats fires once, at its first occurrence. Pure computation, no
I/O, so it belongs with the definitions.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from conveyor.errors import ScheduleError

# The cron nicknames, as the 5-field expressions they stand for.
CRON_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def check_cron(text: str) -> str:
    """``text`` as a standard 5-field cron expression (a nickname such as ``@daily``
    becomes its fields); ``ScheduleError`` if it is not one."""
    from croniter import croniter

    text = CRON_NICKNAMES.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5 or not croniter.is_valid(text):
        raise ScheduleError(
            f"Schedule(cron_expression={text!r}): not a valid 5-field cron expression "
            f"(minute hour day-of-month month day-of-week, e.g. '0 8 * * 1')"
        )
    return text


def next_fire_times(cron: str, zone: ZoneInfo, after: datetime, n: int = 1) -> list[datetime]:
    """The next ``n`` fire times of ``cron`` after ``after``, as aware datetimes in ``zone``.

    A naive ``after`` is taken as UTC.
    """
    if n < 0:
        raise ScheduleError(f"next_fire_times(n={n}): n must be 0 or more")
    start = after.astimezone(zone) if after.tzinfo else after.replace(tzinfo=UTC).astimezone(zone)
    # Walk the wall clock: each wall time the cron names comes up once.
    wall = start.replace(tzinfo=None)
    it = _cron_iter(cron, wall - timedelta(minutes=1) if start.fold else wall)
    out: list[datetime] = []
    # Compare instants in UTC: within one zone Python compares wall times and
    # ignores fold, so the first 02:30 of a repeated hour would look "later"
    # than the second 02:00.
    floor = start.astimezone(UTC)
    while len(out) < n:
        fire = resolve_wall_time(it.get_next(datetime), zone)
        instant = fire.astimezone(UTC)
        if instant <= floor:
            continue
        out.append(fire)
        floor = instant
    return out


def previous_fire_time(cron: str, zone: ZoneInfo, before: datetime) -> datetime | None:
    """The last fire time of ``cron`` strictly before ``before``; ``None`` if none is
    found within 10,000 steps back. A naive ``before`` is taken as UTC."""
    moment = before if before.tzinfo else before.replace(tzinfo=UTC)
    floor = moment.astimezone(UTC)
    # Walk back from just after the moment's wall time; near a DST change,
    # where wall times repeat, from three hours after it.
    span = timedelta(hours=3)
    changes = (floor - span).astimezone(zone).utcoffset() != (
        (floor + span).astimezone(zone).utcoffset()
    )
    ahead = span if changes else timedelta(minutes=1)
    it = _cron_iter(cron, moment.astimezone(zone).replace(tzinfo=None) + ahead)
    for _ in range(10_000):
        fire = resolve_wall_time(it.get_prev(datetime), zone)
        if fire.astimezone(UTC) < floor:
            return fire
    return None


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a wall-clock time: the first occurrence, or after a DST gap."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return aware
    probe = wall
    for _ in range(24 * 60):  # a gap is at most a few hours long
        probe += timedelta(minutes=1)
        aware = probe.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
            return aware
    return wall.replace(tzinfo=zone)


_iterators = threading.local()


def _cron_iter(cron: str, start: datetime) -> Any:
    """A croniter over ``cron`` set at the naive wall time ``start``.

    Parsing a cron expression costs more than stepping through it, so each
    thread keeps one iterator per expression and moves it to ``start``.
    """
    from croniter import croniter

    cache: dict[str, Any] | None = getattr(_iterators, "by_cron", None)
    if cache is None:
        cache = _iterators.by_cron = {}
    it = cache.get(cron)
    if it is None:
        if len(cache) > 1024:
            cache.clear()
        it = cache[cron] = croniter(cron, start)
    else:
        it.set_current(start, force=True)
    return it
