"""Time partitions (hourly, daily, weekly, monthly keys from a start, in a time zone) and
multi-dimensional partitions (time x static), Dagster's partition sets.

A time set's keys are its complete periods: a daily set gains a key when a day
ends, so its keys are asked for as of a moment. Periods are cut in the set's
time zone on the wall clock (a day is midnight to midnight there, 23 or 25
hours across a daylight-saving change); a wall-clock hour that does not exist
is no key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import product
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.definitions.partitions import MAX_KEY_LENGTH, PartitionSet, StaticPartitions
from conveyor.errors import ConfigError, DefinitionError

# Dagster's separator of the dimensions of a multi-partition key.
MULTI_SEPARATOR = "|"
# A set's keys are listed from its start; this many at most, so a mistaken start
# (hourly from the year 1) fails at definition time and not on every tick.
MAX_KEYS = 1_000_000


class TimePartitions(PartitionSet):
    """Keys for every complete period (``unit``) from ``start`` up to now, or ``end``."""

    __slots__ = ("_first", "end", "start", "timezone", "tz")
    unit: ClassVar[str] = ""
    fmt: ClassVar[str] = "%Y-%m-%d"
    example: ClassVar[str] = "2024-01-01"

    def __init__(
        self,
        start: str | date | datetime,
        timezone: str = "UTC",
        end: str | date | datetime | None = None,
    ) -> None:
        name = type(self).__name__
        if not self.unit:
            raise DefinitionError(
                f"{name} is the base of the time partition sets: use HourlyPartitions, "
                f"DailyPartitions, WeeklyPartitions or MonthlyPartitions"
            )
        if not isinstance(timezone, str) or not timezone:
            raise DefinitionError(f"{name}: timezone={timezone!r} must be a name like 'UTC'")
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise DefinitionError(
                f"{name}: unknown timezone {timezone!r}; use an IANA name such as 'UTC' or "
                f"'Europe/Paris'"
            ) from None
        self.timezone = timezone
        self.start = self._moment(start, "start")
        self.end = None if end is None else self._moment(end, "end")
        first = self._floor(self.start)
        if first < self.start:
            first = self._next(first)
        while not self._exists(first):
            first = self._next(first)
        self._first = first
        if self.end is not None and self._aware(self._next(first)) > self._aware(self.end):
            raise DefinitionError(
                f"{name}: end={end!r} leaves no complete period after start={start!r}; give a "
                f"later end"
            )
        span = datetime.now(UTC) - self._aware(first)
        if span / self._length() > MAX_KEYS:
            raise DefinitionError(
                f"{name}: start={start!r} gives more than {MAX_KEYS} keys; give a later start"
            )

    # Periods, on the set's wall clock (naive datetimes in its time zone).

    def _floor(self, t: datetime) -> datetime:
        raise NotImplementedError

    def _next(self, t: datetime) -> datetime:
        raise NotImplementedError

    def _prev(self, t: datetime) -> datetime:
        raise NotImplementedError

    def _length(self) -> timedelta:
        raise NotImplementedError

    def _aware(self, t: datetime) -> datetime:
        return t.replace(tzinfo=self.tz)

    def _exists(self, t: datetime) -> bool:
        back = self._aware(t).astimezone(UTC).astimezone(self.tz).replace(tzinfo=None)
        return back == t

    def _after(self, t: datetime) -> datetime:
        """The period start after ``t``, skipping wall-clock times that do not exist."""
        t = self._next(t)
        while not self._exists(t):
            t = self._next(t)
        return t

    def _local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.tz).replace(tzinfo=None)

    def _moment(self, value: object, what: str) -> datetime:
        name = type(self).__name__
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise DefinitionError(
                    f"{name}: {what}={value!r} is not a date; write it as 2024-01-01 or "
                    f"2024-01-01T06:00"
                ) from None
        else:
            raise DefinitionError(
                f"{name}: {what}={value!r} must be a date: a string like '2024-01-01', a date "
                f"or a datetime"
            )
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.tz).replace(tzinfo=None)
        return moment

    def _last_end(self, at: float | None) -> datetime:
        """Periods ending by this moment (aware) are complete: now, or ``end`` if earlier."""
        now = datetime.fromtimestamp(time.time() if at is None else at, UTC)
        return now if self.end is None else min(now, self._aware(self.end))

    # The PartitionSet interface.

    def keys_at(self, at: float | None = None) -> list[str]:
        limit = self._last_end(at)
        out: list[str] = []
        t = self._first
        while True:
            after = self._after(t)
            if self._aware(after) > limit:
                return out
            out.append(t.strftime(self.fmt))
            t = after

    def keys_for_tick(self, at: float) -> list[str]:
        """The most recent complete period at ``at``: what a schedule runs (Dagster's
        ``build_schedule_from_partitioned_job``); none before the first ends."""
        limit = self._last_end(at)
        t = self._floor(self._local(min(at, limit.timestamp())))
        while not self._exists(t) or self._aware(self._after(t)) > limit:
            t = self._prev(t)
            if t < self._first:
                return []
        return [t.strftime(self.fmt)] if t >= self._first else []

    def latest(self, n: int, at: float | None = None) -> list[str]:
        """The last ``n`` complete periods, oldest first, counted back from the latest
        (without walking every period since ``start``)."""
        last = self.keys_for_tick(time.time() if at is None else at)
        if not last or n <= 0:
            return []
        t = self._parse(last[0], "latest")
        out = [t]
        while len(out) < n:
            t = self._prev(t)
            while t >= self._first and not self._exists(t):
                t = self._prev(t)
            if t < self._first:
                break
            out.append(t)
        return [p.strftime(self.fmt) for p in reversed(out)]

    def keys_between(self, start: object, end: object, owner: str) -> list[str]:
        try:
            begin = self._first if start is None else self._moment(start, "start")
            finish = None if end is None else self._moment(end, "end")
        except DefinitionError as e:
            raise ConfigError(f"{owner}: {e}") from None
        if finish is not None and not begin < finish:
            raise ConfigError(f"{owner}: start {start!r} must be before end {end!r}")
        out = []
        for key in self.keys_at():
            t = self._parse(key, owner)
            if begin <= t and (finish is None or t < finish):
                out.append(key)
        return out

    def check(self, key: object, owner: str, at: float | None = None) -> str:
        name = type(self).__name__
        if key is None:
            raise ConfigError(
                f"{owner} is partitioned by {self.unit}, so a run processes one period: pass "
                f"partition={self.example!r} to run() (--partition {self.example} on the "
                f"command line), or backfill() for a run per period"
            )
        if not isinstance(key, str):
            raise ConfigError(f"{owner}: partition {key!r} must be a string like {self.example}")
        t = self._parse(key, owner)
        if self._floor(t) != t or not self._exists(t):
            raise ConfigError(
                f"{owner}: partition {key!r} is not the start of {self._a_unit()} of {name} "
                f"in {self.timezone}; use {self._floor(t).strftime(self.fmt)}"
            )
        if t < self._first:
            raise ConfigError(
                f"{owner}: partition {key!r} is before the first one, "
                f"{self._first.strftime(self.fmt)}"
            )
        ends = self._aware(self._after(t))
        if self.end is not None and ends > self._aware(self.end):
            raise ConfigError(
                f"{owner}: partition {key!r} is after the last one, which ends by {_text(self.end)}"
            )
        if ends > self._last_end(at):
            raise ConfigError(
                f"{owner}: partition {key!r} has not ended yet (it ends {ends.isoformat()}): a "
                f"run processes a complete {self.unit}"
            )
        return key

    def _a_unit(self) -> str:
        return f"{'an' if self.unit == 'hour' else 'a'} {self.unit}"

    def _parse(self, key: str, owner: str) -> datetime:
        try:
            t = datetime.strptime(key, self.fmt)
        except ValueError:
            t = None
        if t is None or t.strftime(self.fmt) != key:
            raise ConfigError(
                f"{owner}: partition {key!r} is not a {type(self).__name__} key; write it as "
                f"{self.example} ({self.fmt})"
            )
        return t

    def window(self, key: str) -> tuple[datetime, datetime]:
        t = self._parse(key, "partition window")
        return self._aware(t), self._aware(self._after(t))

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, TimePartitions)
            and (other._first, other.end, other.timezone) == (self._first, self.end, self.timezone)
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._first, self.end, self.timezone))

    def __repr__(self) -> str:
        end = "" if self.end is None else f", end={_text(self.end)!r}"
        return (
            f"{type(self).__name__}(start={_text(self._first)!r}, timezone={self.timezone!r}{end})"
        )


def _text(t: datetime) -> str:
    """A wall-clock moment as ``start=``/``end=`` take it: the date alone at midnight."""
    return t.date().isoformat() if t == datetime(t.year, t.month, t.day) else t.isoformat()


class HourlyPartitions(TimePartitions):
    """One key per hour, ``2024-01-01-13:00`` (Dagster's format), from ``start``."""

    __slots__ = ()
    unit = "hour"
    fmt = "%Y-%m-%d-%H:%M"
    example = "2024-01-01-13:00"

    def _floor(self, t: datetime) -> datetime:
        return t.replace(minute=0, second=0, microsecond=0)

    def _next(self, t: datetime) -> datetime:
        return t + timedelta(hours=1)

    def _prev(self, t: datetime) -> datetime:
        return t - timedelta(hours=1)

    def _length(self) -> timedelta:
        return timedelta(hours=1)


class DailyPartitions(TimePartitions):
    """One key per day, ``2024-01-01``, midnight to midnight in the time zone."""

    __slots__ = ()
    unit = "day"

    def _floor(self, t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day)

    def _next(self, t: datetime) -> datetime:
        return t + timedelta(days=1)

    def _prev(self, t: datetime) -> datetime:
        return t - timedelta(days=1)

    def _length(self) -> timedelta:
        return timedelta(days=1)


class WeeklyPartitions(TimePartitions):
    """One key per week, Monday to Monday, named by its Monday (``2024-01-01``)."""

    __slots__ = ()
    unit = "week"

    def _floor(self, t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day) - timedelta(days=t.weekday())

    def _next(self, t: datetime) -> datetime:
        return t + timedelta(days=7)

    def _prev(self, t: datetime) -> datetime:
        return t - timedelta(days=7)

    def _length(self) -> timedelta:
        return timedelta(days=7)


class MonthlyPartitions(TimePartitions):
    """One key per calendar month, named by its first day (``2024-01-01``)."""

    __slots__ = ()
    unit = "month"

    def _floor(self, t: datetime) -> datetime:
        return datetime(t.year, t.month, 1)

    def _next(self, t: datetime) -> datetime:
        return datetime(t.year + t.month // 12, t.month % 12 + 1, 1)

    def _prev(self, t: datetime) -> datetime:
        return datetime(t.year - (t.month == 1), (t.month - 2) % 12 + 1, 1)

    def _length(self) -> timedelta:
        return timedelta(days=31)


class MultiPartitions(PartitionSet):
    """Keys across dimensions, ``"2024-01-01|us"``: every key of one dimension with every
    key of the others.

    Dimensions are ordered by name in a key (as in Dagster), and at most one is
    a time dimension.
    """

    __slots__ = ("dims", "time_dim")

    def __init__(self, dimensions: Mapping[str, PartitionSet]) -> None:
        if not isinstance(dimensions, Mapping) or len(dimensions) < 2:
            raise DefinitionError(
                f"MultiPartitions({dimensions!r}): give two or more named dimensions, e.g. "
                f"MultiPartitions({{'date': DailyPartitions('2024-01-01'), "
                f"'region': StaticPartitions(['us', 'eu'])}})"
            )
        dims: dict[str, PartitionSet] = {}
        time_dims: list[str] = []
        for name in sorted(dimensions, key=str):
            part = dimensions[name]
            if not isinstance(name, str) or not name.isidentifier():
                raise DefinitionError(
                    f"MultiPartitions: dimension name {name!r} must be an identifier like 'date'"
                )
            if isinstance(part, TimePartitions):
                time_dims.append(name)
            elif isinstance(part, StaticPartitions):
                bad = [k for k in part.keys if MULTI_SEPARATOR in k]
                if bad:
                    raise DefinitionError(
                        f"MultiPartitions: key {bad[0]!r} of dimension {name!r} holds "
                        f"{MULTI_SEPARATOR!r}, which separates the dimensions of a key"
                    )
            else:
                raise DefinitionError(
                    f"MultiPartitions: dimension {name!r} is {part!r}; each dimension is "
                    f"StaticPartitions([...]) or a time partition set such as DailyPartitions"
                )
            dims[name] = part
        if len(time_dims) > 1:
            raise DefinitionError(
                f"MultiPartitions: dimensions {', '.join(map(repr, time_dims))} are all time "
                f"partitions; give one time dimension and static ones"
            )
        self.dims = dims
        self.time_dim = time_dims[0] if time_dims else None

    def _join(self, keys: tuple[str, ...]) -> str:
        return MULTI_SEPARATOR.join(keys)

    def keys_at(self, at: float | None = None) -> list[str]:
        return [self._join(p) for p in product(*(d.keys_at(at) for d in self.dims.values()))]

    def keys_for_tick(self, at: float) -> list[str]:
        """One key per static key for the most recent complete period."""
        return [self._join(p) for p in product(*(d.keys_for_tick(at) for d in self.dims.values()))]

    def latest(self, n: int, at: float | None = None) -> list[str]:
        if n <= 0:
            return []
        per = [
            d.latest(n, at) if name == self.time_dim else d.keys_at(at)
            for name, d in self.dims.items()
        ]
        return [self._join(p) for p in product(*per)][-n:]

    def keys_between(self, start: object, end: object, owner: str) -> list[str]:
        if self.time_dim is None:
            return super().keys_between(start, end, owner)
        per = [
            d.keys_between(start, end, owner) if n == self.time_dim else d.keys_at()
            for n, d in self.dims.items()
        ]
        return [self._join(p) for p in product(*per)]

    def _example(self) -> str:
        return self._join(
            tuple(
                d.example if isinstance(d, TimePartitions) else d.keys_at()[0]
                for d in self.dims.values()
            )
        )

    def check(self, key: object, owner: str, at: float | None = None) -> str:
        if key is None or not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
            example = self._example()
        if key is None:
            raise ConfigError(
                f"{owner} is partitioned by {', '.join(self.dims)}, so a run processes one key "
                f"of each, joined by {MULTI_SEPARATOR!r}: pass partition={example!r} to run() "
                f"(--partition '{example}' on the command line), or backfill() for a run per key"
            )
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
            raise ConfigError(f"{owner}: partition {key!r} must be a string like {example!r}")
        parts = key.split(MULTI_SEPARATOR)
        if len(parts) != len(self.dims):
            raise ConfigError(
                f"{owner}: partition {key!r} must have one key per dimension "
                f"({MULTI_SEPARATOR.join(self.dims)}), e.g. {self._example()!r}"
            )
        for (name, dim), part in zip(self.dims.items(), parts, strict=True):
            dim.check(part, f"{owner} (dimension {name!r})", at)
        return key

    def window(self, key: str) -> tuple[datetime, datetime] | None:
        if self.time_dim is None:
            return None
        return self.dims[self.time_dim].window(self.dimensions(key)[self.time_dim])

    def dimensions(self, key: str) -> dict[str, str]:
        return dict(zip(self.dims, key.split(MULTI_SEPARATOR), strict=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MultiPartitions) and other.dims == self.dims

    def __hash__(self) -> int:
        return hash(tuple(self.dims.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {d!r}" for n, d in self.dims.items())
        return f"MultiPartitions({{{inner}}})"


def has_time(partitions: PartitionSet | None) -> bool:
    """Whether ``partitions`` cut time: a time set, or a multi-set with a time dimension."""
    return isinstance(partitions, TimePartitions) or (
        isinstance(partitions, MultiPartitions) and partitions.time_dim is not None
    )


def partition_facts(
    partitions: PartitionSet | None, key: str | None
) -> tuple[tuple[datetime, datetime] | None, dict[str, str] | None]:
    """A run's partition window and keys per dimension, for its context."""
    if partitions is None or key is None:
        return None, None
    try:
        return partitions.window(key), partitions.dimensions(key)
    except (ConfigError, ValueError):
        return None, None
