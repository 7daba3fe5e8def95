"""Trigger strings in dlt's ``type:expr`` grammar, parsed and validated.

Triggers are accepted and validated at definition time; the scheduler daemon
acts on them.

A chain (``job.success:``, ``job.fail:``, ``job.completed:``) fires for the
whole runs of its upstream job. A job's ``.completed`` is dlt's tuple
``(job.success:<name>, job.fail:<name>)``; the one string
``job.completed:<name>`` still parses and fires on either outcome too. A
partial run (``--select``, ``selection=``) ran only some of the job's tasks,
so it is not the job's success: a chain counts it only when it says
``?partial`` (``"job.success:etl?partial"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from conveyor.definitions.cron import CRON_NICKNAMES, check_cron
from conveyor.definitions.durations import parse_duration
from conveyor.definitions.schedule import Schedule
from conveyor.errors import ConfigError, DefinitionError, ScheduleError

TIMED = frozenset({"schedule", "every", "once"})
_WITH_EXPR = frozenset(
    {"schedule", "every", "once", "webhook", "tag", "job.success", "job.fail", "job.completed"}
)
_BARE = frozenset({"manual", "deployment"})
CHAIN_TYPES = frozenset({"job.success", "job.fail", "job.completed"})
# What may follow a chain's job name after '?'.
CHAIN_OPTIONS = {"partial": "partial runs (--select) count too"}
KNOWN = _WITH_EXPR | _BARE | {"http"}
_CRON_ALIASES = frozenset(CRON_NICKNAMES)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A parsed trigger: its ``type`` and ``expr`` (``every`` and ``5m``).

    A ``schedule`` trigger made from a ``Schedule`` keeps its time zone. A
    chain with ``partial`` also fires for the upstream's partial runs.
    """

    type: str
    expr: str
    timezone: str | None = None
    partial: bool = False

    def __str__(self) -> str:
        if self.type in _BARE:
            return self.type
        return f"{self.type}:{self.expr}{'?partial' if self.partial else ''}"

    @property
    def is_timed(self) -> bool:
        return self.type in TIMED


def _looks_like_cron(text: str) -> bool:
    return text in _CRON_ALIASES or len(text.split()) in (5, 6)


def _check_cron(text: str, original: str) -> None:
    try:
        check_cron(text)
    except ScheduleError:
        raise DefinitionError(
            f"Invalid trigger {original!r}: {text!r} is not a valid cron expression "
            f"(5 fields: minute hour day-of-month month day-of-week, e.g. '0 8 * * 1', "
            f"or @hourly, @daily, @weekly, @monthly, @yearly)"
        ) from None


def parse_trigger(value: object) -> Trigger:
    """Parse one trigger string, e.g. ``"every:5m"``, ``"0 8 * * *"``, ``"job.success:etl"``.

    Raises:
        DefinitionError: ``Invalid trigger '<t>': <reason>``.
    """
    if not isinstance(value, str):
        raise DefinitionError(f"Invalid trigger {value!r}: expected a string such as 'every:1h'")
    text = value.strip()
    if not text:
        raise DefinitionError("Invalid trigger '': empty; write e.g. 'every:1h' or '0 8 * * *'")
    if text in _BARE:
        return Trigger(text, "")
    if ":" not in text:  # cron never holds ':', every typed trigger does
        if _looks_like_cron(text):
            _check_cron(text, value)
            return Trigger("schedule", text)
        raise DefinitionError(
            f"Invalid trigger {value!r}: expected 'type:expr' with type one of "
            f"{', '.join(sorted(KNOWN))}, or a cron string"
        )
    kind, _, expr = text.partition(":")
    kind, expr = kind.strip(), expr.strip()
    if kind not in KNOWN:
        raise DefinitionError(
            f"Invalid trigger {value!r}: unknown type {kind!r}; "
            f"types are {', '.join(sorted(KNOWN))}"
        )
    if kind in _BARE:
        raise DefinitionError(f"Invalid trigger {value!r}: {kind!r} takes no expression")
    if not expr and kind != "http":
        raise DefinitionError(f"Invalid trigger {value!r}: missing expression after '{kind}:'")
    if kind == "schedule":
        _check_cron(expr, value)
    elif kind == "every":
        try:
            seconds = parse_duration(expr, what="interval")
        except ConfigError as e:
            raise DefinitionError(f"Invalid trigger {value!r}: {e}") from None
        if seconds <= 0:
            raise DefinitionError(f"Invalid trigger {value!r}: the interval must be more than 0")
    elif kind == "once":
        parse_once(expr, value)
    elif kind in CHAIN_TYPES:
        return _parse_chain(kind, expr, value)
    return Trigger(kind, expr)


def _parse_chain(kind: str, expr: str, original: str) -> Trigger:
    """``<job>`` or ``<job>?partial``, after ``job.success:`` and kin."""
    name, mark, rest = expr.partition("?")
    name = name.strip()
    if not name.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
        raise DefinitionError(f"Invalid trigger {original!r}: {name!r} is not a job name")
    if not mark:
        return Trigger(kind, name)
    known = ", ".join(f"{k!r} ({why})" for k, why in CHAIN_OPTIONS.items())
    options = [o.strip() for o in rest.split(",")]
    for option in options:
        if not option:
            raise DefinitionError(
                f"Invalid trigger {original!r}: an empty option after '?'; the option is {known}"
            )
        if option not in CHAIN_OPTIONS:
            raise DefinitionError(
                f"Invalid trigger {original!r}: unknown option {option!r}; the option is {known}"
            )
    if len(options) > len(set(options)):
        raise DefinitionError(f"Invalid trigger {original!r}: an option is given twice")
    return Trigger(kind, name, partial=True)


def parse_once(expr: str, original: str) -> datetime:
    """The moment of a ``once:`` trigger's ``expr``, in UTC (a naive time is UTC).

    Raises:
        DefinitionError: ``expr`` is not an ISO date or datetime; the message
            quotes ``original``, the whole trigger.
    """
    try:
        if len(expr) == 10:
            d = date.fromisoformat(expr)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(expr)
    except ValueError:
        raise DefinitionError(
            f"Invalid trigger {original!r}: {expr!r} is not an ISO date or datetime "
            f"(e.g. '2026-12-01' or '2026-12-01T08:00:00')"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _flat(value: object) -> list[object]:
    """``value`` as a list of single triggers: a list may hold tuples such as ``up.completed``."""
    if isinstance(value, str | Schedule):
        return [value]
    if not isinstance(value, list | tuple):
        return [value]  # parse_trigger gives the clear error
    return [item for v in value for item in _flat(v)]


def _of_schedule(schedule: Schedule) -> Trigger:
    """A ``Schedule``'s trigger: its chain (Datatailr's ``run_after_job_name=``), or its
    cron in its time zone."""
    if schedule.chain is not None:
        return parse_trigger(schedule.chain)
    return Trigger("schedule", schedule.cron, schedule.timezone)


def parse_triggers(value: object, job_name: str) -> tuple[Trigger, ...]:
    """Parse a job's ``trigger=``: a trigger string, a ``Schedule``, or a list of them.

    A list may hold tuples of triggers, as dlt's ``job.completed`` is one:
    ``[*up.completed]``, ``up.completed`` and ``[up.completed, "every:1d"]`` all work.
    """
    items = _flat(value)
    triggers = tuple(
        _of_schedule(v)
        if isinstance(v, Schedule)
        else parse_trigger(v)  # non-strings get the clear error there
        for v in items
    )
    triggers = tuple(dict.fromkeys(triggers))  # [*up.completed, up.success] holds one twice
    timed = [str(t) for t in triggers if t.is_timed]
    if len(timed) > 1:
        raise DefinitionError(
            f"Invalid trigger {timed[1]!r}: job {job_name!r} already has the timed trigger "
            f"{timed[0]!r}; a job takes at most one schedule, every: or once: trigger"
        )
    for t in triggers:
        if t.type.startswith("job.") and t.expr == job_name:
            raise DefinitionError(f"Invalid trigger {str(t)!r}: job {job_name!r} triggers itself")
    return triggers
