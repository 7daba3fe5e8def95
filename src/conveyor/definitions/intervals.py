"""Intervals: the half-open slice of time ``[start, end)`` a run processes, in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from conveyor.definitions.keys import check_keys
from conveyor.errors import ConfigError, DefinitionError

INCREMENTAL_MODES = ("latest", "interval")


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` in UTC: ``start`` is included, ``end`` is not."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError(f"{self!r}: start and end must be time-zone aware")
        if not self.start < self.end:
            raise ConfigError(f"{self!r}: start must be before end")

    @classmethod
    def from_timestamps(cls, start: float, end: float) -> Interval:
        return cls(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def parse_moment(value: object, what: str) -> datetime:
    """A date or datetime (ISO text or a ``datetime``) as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"{what} {value!r} is not an ISO date or datetime, e.g. "
                f"'2026-11-01' or '2026-11-01T08:00:00'"
            ) from None
    else:
        raise ConfigError(f"{what} {value!r}: expected an ISO date or datetime")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class JobInterval:
    """The span of time a job covers, from ``interval={"start": ..., "end": ...}``.

    ``end=None`` means the job goes on with each new period.
    """

    start: datetime
    end: datetime | None = None

    def __str__(self) -> str:
        end = self.end.isoformat() if self.end is not None else "open"
        return f"[{self.start.isoformat()}, {end})"


def parse_job_interval(value: object, owner: str) -> JobInterval | None:
    """``interval=`` of a job: ``{"start": <date>, "end": <date> | None}``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DefinitionError(
            f"{owner}: interval={value!r} must be a dict such as "
            f"{{'start': '2026-01-01', 'end': None}}"
        )
    check_keys(value, ("start", "end"), owner, "interval key")
    if value.get("start") is None:
        raise DefinitionError(
            f"{owner}: interval= needs a 'start', e.g. {{'start': '2026-01-01', 'end': None}}"
        )
    try:
        start = parse_moment(value["start"], "interval start")
        end = None if value.get("end") is None else parse_moment(value["end"], "interval end")
    except ConfigError as e:
        raise DefinitionError(f"{owner}: {e}") from None
    if end is not None and not start < end:
        raise DefinitionError(
            f"{owner}: interval start {start.isoformat()} must be before its end {end.isoformat()}"
        )
    return JobInterval(start, end)
