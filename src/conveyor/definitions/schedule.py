"""``Schedule``: Datatailr's friendly schedule fields, compiled to cron here, locally.

    Schedule(at_hours=[8], weekdays=["Mon", "Fri"], timezone="Europe/Berlin").cron
    == "0 8 * * 1,5"

Fields finer than the finest one given are fixed at their first value
(minute 0, hour 0, day 1); coarser ones not given are ``*``. Every field is
range-checked with an error that names it and the fix.

Evaluating a cron expression (next and previous fire times, through croniter)
is ``cron``'s duty, and saying one in words is ``cron_text``'s; ``Schedule``
delegates to them.

Datatailr also writes a chain as a schedule:
``Schedule(run_after_job_name="etl", run_after_job_condition="failure")`` is
the trigger ``job.fail:etl``. Such a schedule has no times, so it refuses
the time fields, and its ``chain`` is the trigger string a job's triggers
parse like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.definitions import cron
from conveyor.definitions.cron import CRON_NICKNAMES, check_cron
from conveyor.definitions.cron_text import describe
from conveyor.definitions.display_names import identifier_for
from conveyor.errors import ScheduleError

__all__ = ["CRON_NICKNAMES", "MONTHS", "WEEKDAYS", "Schedule", "check_cron", "describe"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Mon=1 ... Sun=7
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


# The five cron fields from finest to coarsest; day-of-month and weekday share a level.
_LEVEL = {"minute": 0, "hour": 1, "day": 2, "weekday": 2, "month": 3}
_FIRST = {"minute": "0", "hour": "0", "day": "1"}


def _what(field: str, value: object) -> str:
    return f"Schedule({field}={value!r})"


def _as_list(field: str, value: object) -> list[object]:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        if not items:
            raise ScheduleError(
                f"{_what(field, value)}: the list is empty; leave the field out instead"
            )
        return items
    raise ScheduleError(f"{_what(field, value)}: expected a number or a list of them")


def _numbers(field: str, value: object, low: int, high: int, unit: str) -> list[int]:
    out = []
    for item in _as_list(field, value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise ScheduleError(
                f"{_what(field, value)}: {item!r} is not a whole number; {unit} are {low}-{high}"
            )
        if not low <= item <= high:
            raise ScheduleError(
                f"{_what(field, value)}: {item} is out of range; {unit} are {low}-{high}"
            )
        out.append(item)
    return sorted(set(out))


def _named(field: str, value: object, names: tuple[str, ...], unit: str) -> list[int]:
    """Numbers 1..len(names) from numbers or names (any case, at least 3 letters)."""
    out = []
    for item in _as_list(field, value):
        if isinstance(item, int) and not isinstance(item, bool):
            if not 1 <= item <= len(names):
                raise ScheduleError(
                    f"{_what(field, value)}: {item} is out of range; {unit} are "
                    f"1-{len(names)} ({names[0].title()}=1)"
                )
            out.append(item)
            continue
        if not isinstance(item, str):
            raise ScheduleError(f"{_what(field, value)}: {item!r} is not a name or a number")
        text = item.strip().lower()
        matches = [
            i
            for i, n in enumerate(names, 1)
            if len(text) >= 3
            and (n.startswith(text) or text.startswith(n))
            and _full_name_ok(text, n)
        ]
        if len(matches) != 1:
            raise ScheduleError(
                f"{_what(field, value)}: {item!r} is not a {unit[:-1]}; write at least 3 letters "
                f"of one ({', '.join(n.title() for n in names)}) or its number"
            )
        out.append(matches[0])
    return sorted(set(out))


_FULL = {
    "mon": "monday",
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
    "jan": "january",
    "feb": "february",
    "mar": "march",
    "apr": "april",
    "may": "may",
    "jun": "june",
    "jul": "july",
    "aug": "august",
    "sep": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}


def _full_name_ok(text: str, short: str) -> bool:
    """``text`` is a prefix (of at least 3 letters) of the full name ``short`` abbreviates."""
    return _FULL[short].startswith(text)


def _step(field: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{_what(field, value)}: the step must be a whole number")
    if not 1 <= value <= high:
        raise ScheduleError(f"{_what(field, value)}: the step must be from 1 to {high}")
    return value


def _zone(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise ScheduleError(
            f"{_what('timezone', value)}: expected an IANA name such as 'Europe/Berlin' or 'UTC'"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{_what('timezone', value)}: unknown time zone; use an IANA name "
            f"such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
        ) from None


# Datatailr's run_after_job_condition values (with or without "on "), to chain trigger types.
CONDITIONS = {
    "success": "job.success",
    "succeeded": "job.success",
    "failure": "job.fail",
    "failed": "job.fail",
    "fail": "job.fail",
    "completed": "job.completed",
    "completion": "job.completed",
    "complete": "job.completed",
}
_CONDITION_NAMES = {"job.success": "success", "job.fail": "failure", "job.completed": "completed"}


def _chain(name: object, condition: object, uuid: object, given: list[str]) -> str | None:
    """The chain trigger (``job.success:etl``) of Datatailr's ``run_after_*`` fields, or None."""
    if uuid is not None:
        raise ScheduleError(
            f"{_what('run_after_job_uuid', uuid)}: jobs here are known by name, not by UUID; "
            f"write run_after_job_name='<the upstream job's name>'"
        )
    if name is None:
        if condition is not None:
            raise ScheduleError(
                f"{_what('run_after_job_condition', condition)}: a condition needs the job it "
                f"follows; add run_after_job_name='<job name>'"
            )
        return None
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(
            f"{_what('run_after_job_name', name)}: expected the name of the job to run after, "
            f"e.g. run_after_job_name='etl'"
        )
    if given:
        raise ScheduleError(
            f"Schedule(run_after_job_name={name!r}, {given[0]}=...): a schedule that runs after "
            f"another job has no times of its own; give either run_after_job_name or time "
            f"fields, not both (a job may have both triggers: trigger=[Schedule(...), "
            f"Schedule(run_after_job_name=...)])"
        )
    kind = "job.success"
    if condition is not None:
        text = condition.strip().lower() if isinstance(condition, str) else ""
        text = text.removeprefix("on ").strip()
        if text not in CONDITIONS:
            raise ScheduleError(
                f"{_what('run_after_job_condition', condition)}: the condition is 'success', "
                f"'failure' or 'completed' (either outcome), optionally written 'on success'"
            )
        kind = CONDITIONS[text]
    from conveyor.definitions.triggers import parse_trigger
    from conveyor.errors import DefinitionError

    upstream = name.strip()
    if any(c.isspace() for c in upstream):
        # A Datatailr display name ("Simple Data Pipeline") names the job derived from it.
        upstream = identifier_for(upstream)
    chain = f"{kind}:{upstream}"
    try:
        parse_trigger(chain)
    except DefinitionError as e:
        raise ScheduleError(f"{_what('run_after_job_name', name)}: {e}") from None
    return chain


def _join(values: Iterable[int]) -> str:
    return ",".join(str(v) for v in values)


@dataclass(frozen=True, init=False)
class Schedule:
    """When a job runs, as friendly fields or a cron expression, in a time zone.

    Args:
        cron_expression: a 5-field cron string; not together with the fields below.
        at_minutes: minutes of the hour, 0-59.
        every_minute: run every N minutes (``*/N``).
        at_hours: hours of the day, 0-23.
        every_hour: every N hours.
        weekdays: names (``"Mon"``, ``"monday"``, any case, 3+ letters) or numbers,
            Mon=1 ... Sun=7.
        day_of_month: days of the month, 1-31.
        in_month: month names or numbers, Jan=1 ... Dec=12.
        every_month: every N months.
        timezone: an IANA time zone; default UTC.
        run_after_job_name: run after this job instead of at times (Datatailr's
            way to write the chain trigger ``job.success:<name>``).
        run_after_job_condition: ``"success"`` (the default), ``"failure"`` or
            ``"completed"`` (either outcome); ``"on failure"`` reads too.
        run_after_job_uuid: refused: jobs here are known by name.
    """

    _cron: str
    timezone: str
    chain: str | None

    def __init__(
        self,
        cron_expression: str = "",
        at_minutes: int | Sequence[int] | None = None,
        every_minute: int | None = None,
        at_hours: int | Sequence[int] | None = None,
        every_hour: int | None = None,
        weekdays: str | int | Sequence[str | int] | None = None,
        day_of_month: int | Sequence[int] | None = None,
        in_month: str | int | Sequence[str | int] | None = None,
        every_month: int | None = None,
        timezone: str | None = None,
        run_after_job_uuid: str | None = None,
        run_after_job_name: str | None = None,
        run_after_job_condition: str | None = None,
    ) -> None:
        tz = "UTC" if timezone is None else timezone
        _zone(tz)
        friendly = {
            "at_minutes": at_minutes,
            "every_minute": every_minute,
            "at_hours": at_hours,
            "every_hour": every_hour,
            "weekdays": weekdays,
            "day_of_month": day_of_month,
            "in_month": in_month,
            "every_month": every_month,
        }
        given = [k for k, v in friendly.items() if v is not None]
        timed = [*given, *(["cron_expression"] if cron_expression else [])]
        chain = _chain(
            run_after_job_name,
            run_after_job_condition,
            run_after_job_uuid,
            [*timed, *(["timezone"] if timezone is not None else [])],
        )
        object.__setattr__(self, "chain", chain)
        if chain is not None:
            object.__setattr__(self, "_cron", "")
            object.__setattr__(self, "timezone", tz)
            return
        if not isinstance(cron_expression, str):
            raise ScheduleError(
                f"{_what('cron_expression', cron_expression)}: expected a "
                f"cron string such as '0 8 * * 1'"
            )
        if cron_expression.strip():
            if given:
                raise ScheduleError(
                    f"Schedule(cron_expression={cron_expression!r}, {given[0]}=...): give "
                    f"either a cron_expression or friendly fields, not both"
                )
            cron = check_cron(cron_expression.strip())
        elif not given:
            raise ScheduleError(
                "Schedule(): give a cron_expression or at least one field, e.g. "
                "Schedule(at_hours=[8]), or run_after_job_name='<job>' to run after a job"
            )
        else:
            cron = _compile(friendly)
        object.__setattr__(self, "_cron", cron)
        object.__setattr__(self, "timezone", tz)

    @property
    def cron(self) -> str:
        """The 5-field cron string; ``ScheduleError`` for a schedule that runs after a job."""
        if self.chain is not None:
            raise ScheduleError(
                f"{self!r} runs after another job and has no cron string; its trigger is "
                f"{self.chain!r} (Schedule.chain)"
            )
        return self._cron

    @property
    def run_after_job_name(self) -> str | None:
        """The job this schedule runs after, or ``None`` for a timed schedule."""
        return None if self.chain is None else self.chain.partition(":")[2]

    @property
    def run_after_job_condition(self) -> str | None:
        """``"success"``, ``"failure"`` or ``"completed"``; ``None`` for a timed schedule."""
        return None if self.chain is None else _CONDITION_NAMES[self.chain.partition(":")[0]]

    def get_cron_string(self) -> str:
        """The 5-field cron string (``min hour dom month dow``)."""
        return self.cron

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_fire_times(self, after: datetime, n: int = 1) -> list[datetime]:
        """The next ``n`` fire times after ``after``, as aware datetimes in the time zone.

        Wall-clock times are matched in the schedule's time zone. A time that
        a DST change skips fires once, at the first valid instant after the
        gap; a time that a DST change repeats fires once, at its first
        occurrence. A naive ``after`` is taken as UTC.
        """
        return cron.next_fire_times(self.cron, self.zone, after, n)

    def previous_fire_time(self, before: datetime) -> datetime:
        """The last fire time strictly before ``before`` (same wall-clock rules)."""
        fire = cron.previous_fire_time(self.cron, self.zone, before)
        if fire is None:
            raise ScheduleError(f"{self!r}: no fire time before {before.isoformat()}")
        return fire

    def __str__(self) -> str:
        if self.chain is not None:
            return f"after each {self.run_after_job_condition} of {self.run_after_job_name}"
        return f"{describe(self.cron)} ({self.timezone})"

    def __repr__(self) -> str:
        if self.chain is not None:
            return (
                f"Schedule(run_after_job_name={self.run_after_job_name!r}, "
                f"run_after_job_condition={self.run_after_job_condition!r})"
            )
        return f"Schedule(cron={self.cron!r}, timezone={self.timezone!r})"


def _compile(f: dict[str, Any]) -> str:
    for a, b in (
        ("at_minutes", "every_minute"),
        ("at_hours", "every_hour"),
        ("in_month", "every_month"),
    ):
        if f[a] is not None and f[b] is not None:
            raise ScheduleError(f"Schedule({a}=..., {b}=...): give one of {a} and {b}, not both")
    fields: dict[str, str | None] = {
        "minute": None,
        "hour": None,
        "day": None,
        "month": None,
        "weekday": None,
    }
    if f["at_minutes"] is not None:
        fields["minute"] = _join(_numbers("at_minutes", f["at_minutes"], 0, 59, "minutes"))
    if f["every_minute"] is not None:
        fields["minute"] = f"*/{_step('every_minute', f['every_minute'], 59)}"
    if f["at_hours"] is not None:
        fields["hour"] = _join(_numbers("at_hours", f["at_hours"], 0, 23, "hours"))
    if f["every_hour"] is not None:
        fields["hour"] = f"*/{_step('every_hour', f['every_hour'], 23)}"
    if f["day_of_month"] is not None:
        fields["day"] = _join(_numbers("day_of_month", f["day_of_month"], 1, 31, "days"))
    if f["weekdays"] is not None:
        fields["weekday"] = _join(_named("weekdays", f["weekdays"], WEEKDAYS, "weekdays"))
    if f["in_month"] is not None:
        fields["month"] = _join(_named("in_month", f["in_month"], MONTHS, "months"))
    if f["every_month"] is not None:
        fields["month"] = f"*/{_step('every_month', f['every_month'], 12)}"
    finest = min(_LEVEL[k] for k, v in fields.items() if v is not None)
    out = {}
    for name, value in fields.items():
        if value is not None:
            out[name] = value
        elif _LEVEL[name] < finest and name in _FIRST:
            out[name] = _FIRST[name]
        else:
            out[name] = "*"
    return " ".join(out[k] for k in ("minute", "hour", "day", "month", "weekday"))
