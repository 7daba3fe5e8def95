"""dlt's expanded timeout in ``execute=``: ``{"timeout": {"timeout": 3600.0}}``.

dlt accepts a job's timeout as seconds, as text (``"4h"``), or as the dict its
manifest stores (``TTimeoutSpec``: ``timeout`` and ``grace_period``, in seconds).
Conveyor takes the first two; this module unwraps the dict so that a timeout
copied from a dlt manifest works as written. ``grace_period`` is refused: an
overdue run is canceled (between steps; a process executor's step gets SIGTERM,
then SIGKILL a second later), and that grace is not set per job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.definitions.keys import check_keys
from conveyor.errors import DefinitionError

__all__ = ["expand_timeout"]

_KEYS = ("timeout", "grace_period")


def expand_timeout(execute: Any, owner: str) -> Any:
    """``execute`` with a ``TTimeoutSpec`` dict under ``timeout`` replaced by its seconds.

    Anything else is returned as it is, for ``ExecuteOptions.parse`` to check.

    Raises:
        DefinitionError: the dict has unknown keys, no ``timeout``, or a ``grace_period``.
    """
    if not isinstance(execute, Mapping):
        return execute
    spec = execute.get("timeout")
    if not isinstance(spec, Mapping):
        return execute
    check_keys(spec, _KEYS, owner, "execute timeout key")
    if "grace_period" in spec:
        raise DefinitionError(
            f"{owner}: execute timeout grace_period={spec['grace_period']!r} is not taken: a "
            f"run past its timeout is canceled between steps, and a step in its own process "
            f"gets SIGTERM, then SIGKILL a second later; remove grace_period"
        )
    if "timeout" not in spec:
        raise DefinitionError(
            f"{owner}: execute timeout {dict(spec)!r} has no 'timeout'; give it in seconds or "
            f"as text, e.g. {{'timeout': '4h'}}"
        )
    return {**execute, "timeout": spec["timeout"]}
