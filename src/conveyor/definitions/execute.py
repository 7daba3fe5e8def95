"""Execution limits of a job (dlt's ``execute=``): timeout, concurrency, run retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.durations import parse_duration
from conveyor.definitions.keys import check_keys
from conveyor.errors import ConfigError, DefinitionError

_KEYS = ("timeout", "concurrency", "retries")


@dataclass(frozen=True, slots=True)
class ExecuteOptions:
    """Limits that apply to whole runs of a job.

    Attributes:
        timeout: seconds a run may take before it is stopped (``None``: no limit).
        concurrency: runs of this job at once (``None``: no limit); default 1.
        retries: times a failed run is queued again from failure.
    """

    timeout: float | None = None
    concurrency: int | None = 1
    retries: int = 0

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None, owner: str) -> ExecuteOptions:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise DefinitionError(f"{owner}: execute must be a dict, e.g. {{'timeout': '4h'}}")
        check_keys(value, _KEYS, owner, "execute option")
        timeout = value.get("timeout")
        try:
            seconds = None if timeout is None else parse_duration(timeout, what="execute timeout")
        except ConfigError as e:
            raise DefinitionError(f"{owner}: {e}") from None
        concurrency = value.get("concurrency", 1)
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise DefinitionError(
                f"{owner}: execute concurrency={concurrency!r} must be a whole number >= 1, "
                f"or None for no limit"
            )
        retries = value.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise DefinitionError(
                f"{owner}: execute retries={retries!r} must be a whole number >= 0"
            )
        return cls(timeout=seconds, concurrency=concurrency, retries=retries)
