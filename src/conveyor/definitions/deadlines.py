"""Datatailr's run deadlines of a job: ``fail_after`` and ``expire_after``.

``fail_after`` counts from a run's start: a run still running then fails, its
running tasks stopped. ``expire_after`` counts from the moment a run was
queued: a run that has not started by then is canceled as expired. Both are
enforced by the scheduler daemon's pass (``scheduler.expiry``), as the
``execute={"timeout": ...}`` of dlt is (which cancels rather than fails).
"""

from __future__ import annotations

from conveyor.definitions.durations import parse_duration
from conveyor.errors import ConfigError, DefinitionError

_EXAMPLES = "'30m', '2h', '1h30m' or a number of seconds"


def parse_deadline(value: object, option: str, owner: str) -> float | None:
    """``fail_after=`` or ``expire_after=`` as seconds (> 0), or ``None`` when not given.

    Raises:
        DefinitionError: the value is not a duration, or is not above zero.
    """
    if value is None:
        return None
    try:
        seconds = parse_duration(value, what=option)
    except ConfigError as e:
        raise DefinitionError(f"{owner}: {e}") from None
    if seconds <= 0:
        raise DefinitionError(
            f"{owner}: {option}={value!r} must be a duration above zero, such as {_EXAMPLES}; "
            f"leave it out for no limit"
        )
    return seconds


def deadline_text(seconds: float) -> str:
    """``seconds`` as the user would write it: ``"30m"``, ``"2h"``, ``"1h30m"``, ``"1.5s"``."""
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
