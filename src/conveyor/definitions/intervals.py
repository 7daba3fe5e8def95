"""Intervals: the half-open slice of time ``[start, end)`` a run processes, in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.errors import ConfigError


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
