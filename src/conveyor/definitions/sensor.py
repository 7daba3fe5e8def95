"""``@sensor``: a function the daemon calls every ``interval`` that may ask for runs.

    @sensor(job=report, interval="30s")
    def new_files(context: SensorContext):
        seen = int(context.cursor or 0)
        files = list_files_newer_than(seen)
        context.cursor = str(newest(files))
        return [RunRequest(run_key=f.name, run_config={"config": {"path": f.name}})
                for f in files]

A request's ``run_key`` makes it run once: asking again with the same key
does nothing. The cursor is stored, so it survives daemon restarts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.definitions.durations import parse_duration
from conveyor.errors import ConfigError, DefinitionError


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A run a sensor asks for. ``run_key``: the same key never runs twice.

    ``partition`` names one key of the job's ``StaticPartitions``; without it
    a partitioned job gets one run per key.
    """

    run_key: str | None = None
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    partition: str | None = None


class SensorContext:
    """What a sensor knows: its stored ``cursor`` (set it to move on) and when it last ran."""

    __slots__ = ("cursor", "last_evaluated_at", "sensor_name")

    def __init__(
        self, sensor_name: str, cursor: str | None, last_evaluated_at: float | None
    ) -> None:
        self.sensor_name = sensor_name
        self.cursor = cursor
        self.last_evaluated_at = last_evaluated_at


class Sensor:
    """A function marked ``@sensor``; the daemon evaluates it every ``interval``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        job: Any,
        interval: float | str = 30,
        name: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        owner = f"@sensor {self.name!r}"
        job_name = job if isinstance(job, str) else getattr(job, "name", None)
        if not isinstance(job_name, str) or not job_name:
            raise DefinitionError(f"{owner}: job= must be a job or a job's name, got {job!r}")
        self.job_name = job_name
        try:
            self.interval = parse_duration(interval, what="sensor interval")
        except ConfigError as e:
            raise DefinitionError(f"{owner}: {e}") from None
        if self.interval <= 0:
            raise DefinitionError(f"{owner}: interval must be more than 0 seconds")
        params = inspect.signature(fn).parameters
        if len(params) > 1:
            raise DefinitionError(f"{owner}: a sensor takes at most one parameter, its context")
        self.takes_context = len(params) == 1

    def evaluate(self, context: SensorContext) -> list[RunRequest]:
        """Call the sensor; its result as a list of requests (``True`` asks for one run)."""
        result = self.fn(context) if self.takes_context else self.fn()
        if result is None or result is False:
            return []
        if result is True:
            return [RunRequest()]
        items = [result] if isinstance(result, RunRequest) else list(result)
        for item in items:
            if not isinstance(item, RunRequest):
                raise DefinitionError(
                    f"@sensor {self.name!r} returned {item!r}; return RunRequest(...)s, a list "
                    f"of them, True, or None"
                )
        return items

    def __repr__(self) -> str:
        return f"<Sensor {self.name} -> {self.job_name} every {self.interval:g}s>"


def sensor(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Mark a function as a sensor: ``@sensor(job=report, interval="30s")``."""
    if fn is not None:
        return Sensor(fn, **options)
    return lambda f: Sensor(f, **options)
