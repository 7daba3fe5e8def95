"""Which timed ticks are due: pure functions of the trigger, the last tick and the clock.

Tick times are the same in every daemon (cron instants in the job's time
zone; ``every:P`` on multiples of P since the epoch; the ``once:`` instant),
so two daemons compute the same ticks and the tick store's unique key keeps
one of each.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from conveyor.definitions.durations import parse_duration
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.triggers import Trigger

Catchup = Literal["latest", "all", "none"]
# A tick this recent is due, not missed, whatever the catch-up policy.
ON_TIME = 2.0
# The most ticks one evaluation fires for one trigger; the rest follow on the next.
MAX_PER_PASS = 1000


@dataclass(frozen=True, slots=True)
class Tick:
    key: str
    trigger: str
    at: float


@functools.lru_cache(maxsize=4096)
def _schedule(cron: str, timezone: str | None) -> Schedule:
    return Schedule(cron_expression=cron, timezone=timezone)


def schedule_of(trigger: Trigger) -> Schedule:
    """The ``Schedule`` of a ``schedule:`` trigger (made once per cron and time zone)."""
    return _schedule(trigger.expr, trigger.timezone)


# Cron instants are pure functions of the expression, the zone and the moment, and many
# jobs share a schedule ("0 * * * *"): a pass that fires the ticks of a thousand jobs asks
# the same question a thousand times. Each answer is computed once.
@functools.lru_cache(maxsize=8192)
def _cron_next(cron: str, timezone: str | None, after: float) -> float:
    """The first instant of ``cron`` after ``after``."""
    [nxt] = _schedule(cron, timezone).next_fire_times(datetime.fromtimestamp(after, UTC), 1)
    return nxt.timestamp()


@functools.lru_cache(maxsize=8192)
def _cron_previous(cron: str, timezone: str | None, before: float) -> float:
    """The last instant of ``cron`` strictly before ``before``."""
    schedule = _schedule(cron, timezone)
    return schedule.previous_fire_time(datetime.fromtimestamp(before, UTC)).timestamp()


def tick_key(trigger: Trigger, at: float) -> str:
    return f"{trigger}@{datetime.fromtimestamp(at, UTC).isoformat()}"


def fire_times(trigger: Trigger, since: float, now: float, limit: int) -> list[float]:
    """The trigger's tick instants in ``(since, now]``, oldest first, at most ``limit``."""
    if trigger.type == "every":
        period = parse_duration(trigger.expr)
        first = math.floor(since / period) + 1
        last = math.floor(now / period)
        return [k * period for k in range(first, min(last, first + limit - 1) + 1)]
    if trigger.type == "once":
        from conveyor.definitions.triggers import parse_once

        at = parse_once(trigger.expr, str(trigger)).timestamp()
        return [at] if since < at <= now else []
    if trigger.type == "schedule":
        out: list[float] = []
        after = since
        while len(out) < limit:
            at = _cron_next(trigger.expr, trigger.timezone, after)
            if at > now:
                break
            out.append(at)
            after = at
        return out
    return []


def next_after(trigger: Trigger, moment: float) -> float | None:
    """The trigger's first tick instant after ``moment``; ``None`` when there is none."""
    if trigger.type == "every":
        period = parse_duration(trigger.expr)
        return (math.floor(moment / period) + 1) * period
    if trigger.type == "once":
        from conveyor.definitions.triggers import parse_once

        at = parse_once(trigger.expr, str(trigger)).timestamp()
        return at if at > moment else None
    if trigger.type == "schedule":
        return _cron_next(trigger.expr, trigger.timezone, moment)
    return None


def period_before(trigger: Trigger, at: float) -> tuple[float, float] | None:
    """The interval ``[start, at)`` a tick at ``at`` covers: the elapsed period."""
    if trigger.type == "every":
        return (at - parse_duration(trigger.expr), at)
    if trigger.type == "schedule":
        return (_cron_previous(trigger.expr, trigger.timezone, at), at)
    return None


def previous_instant(trigger: Trigger, at: float) -> float:
    """The trigger's last fire instant at or before ``at``."""
    if trigger.type == "every":
        period = parse_duration(trigger.expr)
        return math.floor(at / period) * period
    return _cron_previous(trigger.expr, trigger.timezone, at + 1e-3)


def due(
    trigger: Trigger, last: float | None, since: float, now: float, catchup: Catchup
) -> list[Tick]:
    """The ticks to fire now.

    ``last`` is the newest tick already fired for this trigger (from the tick
    store), ``since`` when this daemon started watching. Missed ticks (due
    more than ``ON_TIME`` ago) follow ``catchup``: ``"latest"`` fires the
    newest, ``"all"`` every one (oldest first), ``"none"`` none of them.
    """
    start = last if last is not None else since
    if catchup == "all":
        times = fire_times(trigger, start, now, MAX_PER_PASS)
    else:
        # Only the newest can fire: look back no further than needed.
        times = _newest(trigger, start, now)
        if catchup == "none":
            times = [t for t in times if now - t <= ON_TIME]
    return [Tick(tick_key(trigger, t), str(trigger), t) for t in times]


def _newest(trigger: Trigger, start: float, now: float) -> list[float]:
    if trigger.type == "every":
        period = parse_duration(trigger.expr)
        at = math.floor(now / period) * period
        return [at] if at > start else []
    times = fire_times(trigger, max(start, now - 400 * 86400), now, MAX_PER_PASS)
    return times[-1:]
