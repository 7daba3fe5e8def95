"""Cron expressions in words, for the CLI, the UI and ``str(Schedule(...))``.

    describe("0 8 * * 1,5") == "at 08:00 on Mon and Fri"

croniter evaluates cron but does not describe it. This module reads the five
fields of an expression that ``cron.check_cron`` has already accepted and says
them in words; a field it has no words for is shown as written.
"""

from __future__ import annotations

import re

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_STEP_OF_ONE = re.compile(r"^\*/0*1$")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def describe(cron: str) -> str:
    """A readable form of a 5-field cron string: ``at 08:00 on Mon and Fri``."""
    # A step of 1 is every value, and is said as "*" is ("every 1 minutes" reads badly).
    minute, hour, day, month, weekday = (_STEP_OF_ONE.sub("*", f) for f in cron.split())
    parts = []
    if minute.isdigit() and hour.isdigit():
        parts.append(f"at {int(hour):02d}:{int(minute):02d}")
    elif minute.isdigit() and "," in hour and all(h.isdigit() for h in hour.split(",")):
        parts.append("at " + _and([f"{int(h):02d}:{int(minute):02d}" for h in hour.split(",")]))
    else:
        parts.append(_every_or_at(minute, "minute", "at"))
        if hour != "*":
            parts.append(_every_or_at(hour, "hour", "past"))
        elif minute != "*" and not minute.startswith("*/"):
            parts.append("every hour")
    if weekday != "*":
        parts.append("on " + _names(weekday, WEEKDAY_NAMES, "weekday"))
    if day != "*":
        parts.append(_every_or_at(day, "day", "on"))
    if month.startswith("*/"):
        parts.append(_every(month[2:], "month"))
    elif month != "*":
        parts.append("in " + _names(month, MONTH_NAMES, "month"))
    return " ".join(parts)


def _every_or_at(value: str, unit: str, word: str) -> str:
    if value == "*":
        return f"every {unit}"
    if value.startswith("*/"):
        return _every(value[2:], unit)
    items = value.split(",")
    return f"{word} {unit}{'s' if len(items) > 1 else ''} {_and(items)}"


def _every(step: str, unit: str) -> str:
    """``*/N`` in words, N > 1: ``every 5 minutes``."""
    return f"every {int(step)} {unit}s" if step.isdigit() else f"every {step} {unit}s"


def _names(value: str, names: tuple[str, ...], unit: str) -> str:
    if value.startswith("*/"):
        return _every(value[2:], unit)
    items = []
    for v in value.split(","):
        if v.isdigit() and 1 <= int(v) <= len(names):
            items.append(names[int(v) - 1])
        elif v == "0" and unit == "weekday":
            items.append("Sun")
        else:
            items.append(v)
    return _and(items)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
