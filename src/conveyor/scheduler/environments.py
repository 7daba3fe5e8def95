"""The deployed environments a daemon serves (``conveyor daemon --env prod``).

The daemon's workspace is the union of the environments' scoped workspaces (job
``etl`` of the version active in ``prod`` is ``prod.etl``), so every scheduler key is
per environment. Each pass reads each environment's activation count (one small
row per environment); when it moved, the environment's jobs are swapped for those of
its new active version (the jobs of the old one stop firing, the new ones start), and
the jobs with ``trigger="deployment"`` get one run for that activation, under a tick
key of its own, so two daemons queue it once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.job import Job
from conveyor.definitions.sensor import Sensor
from conveyor.errors import ConfigError
from conveyor.storage.deployments import environment_names
from conveyor.storage.instance import Instance
from conveyor.workspace import Workspace

log = logging.getLogger("conveyor.daemon")

# The trigger that fires when a version becomes active in a job's environment.
DEPLOYMENT = "deployment"
# Seconds before a version whose code could not be loaded is tried again.
RETRY_LOAD = 30.0


@dataclass(frozen=True, slots=True)
class Pin:
    """The code a job of the daemon's workspace runs: its environment's version."""

    environment: str
    version: int

    @property
    def origin(self) -> dict[str, Any]:
        """What a run records to be loaded again (``runner``): ``{"environment", "version"}``."""
        return {"environment": self.environment, "version": self.version}


@dataclass(frozen=True, slots=True)
class Activation:
    """Version ``version`` became active in ``environment`` (its ``activation``-th time)."""

    environment: str
    version: int
    activation: int
    previous: int | None


def chosen_environments(
    values: Sequence[str], configured: Sequence[str] | None = None
) -> list[str]:
    """The environments ``--env`` names (``all``: every configured one), in promotion order.

    Raises:
        ConfigError: a name that is not a configured environment.
    """
    names = list(configured if configured is not None else environment_names())
    wanted: set[str] = set()
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if name == "all":
                wanted.update(names)
            elif name in names:
                wanted.add(name)
            else:
                raise ConfigError(
                    f"--env {name!r}: no such environment; the environments are "
                    f"{', '.join(names)} (CONVEYOR_ENVIRONMENTS), or 'all' for every one"
                )
    return [n for n in names if n in wanted]


class Environments:
    """The environments of one daemon, each with the jobs of its active version.

    ``workspace`` is one object for the daemon's life: its ``jobs`` and ``sensors``
    are replaced in place when an environment's active version changes, so every
    step of the daemon sees the new jobs on its next read.
    """

    def __init__(self, instance: Instance, names: Sequence[str]) -> None:
        if not names:
            raise ConfigError("a daemon of environments needs at least one (--env dev)")
        self.instance = instance
        self.names = list(names)
        self.workspace = Workspace(jobs={}, origin={"environments": self.names})
        # The job names of each environment, and the code each job runs.
        self.pins: dict[str, Pin] = {}
        self._jobs: dict[str, dict[str, Job]] = {n: {} for n in self.names}
        self._sensors: dict[str, dict[str, Sensor]] = {n: {} for n in self.names}
        # Per environment, the activation count last seen (0: none yet).
        self.seen: dict[str, int] = dict.fromkeys(self.names, 0)
        self.active: dict[str, int | None] = dict.fromkeys(self.names, None)
        self._waiting: set[str] = set()
        # Per environment, the activation whose code failed to load, and when to try again.
        self._failed: dict[str, tuple[int, float]] = {}
        # What the last ``refresh`` could not load.
        self.errors: list[Exception] = []

    def refresh(self) -> list[Activation]:
        """Swap in the jobs of each environment whose active version changed since the
        last call; returns what changed (every environment with a version, the first
        time). A version whose code fails to load leaves its environment's jobs as they
        were, is tried again every ``RETRY_LOAD`` seconds, and is kept in ``errors``."""
        from conveyor.execution.environments import environment_workspace

        changed: list[Activation] = []
        errors: list[Exception] = []
        for name in self.names:
            record = self.instance.deployments.environment(name)
            number = record.active_version
            if number is None:
                if name not in self._waiting:
                    self._waiting.add(name)
                    log.info(
                        "environment %s has no active version yet: waiting for one "
                        "(conveyor deploy --env %s)",
                        name,
                        name,
                    )
                continue
            if record.activations == self.seen[name]:
                continue
            retry = self._failed.get(name)
            if retry is not None and retry[0] == record.activations and time.monotonic() < retry[1]:
                continue  # its jobs stay those of the version before, until it loads
            try:
                ws = environment_workspace(self.instance, name, number)
            except Exception as e:
                self._failed[name] = (record.activations, time.monotonic() + RETRY_LOAD)
                errors.append(e)
                continue
            self._failed.pop(name, None)
            previous = self.active[name]
            self._jobs[name] = dict(ws.jobs)
            self._sensors[name] = dict(ws.sensors)
            self.seen[name], self.active[name] = record.activations, number
            self._waiting.discard(name)
            changed.append(Activation(name, number, record.activations, previous))
            log.info(
                "environment %s: version %d is active%s (%d job%s)",
                name,
                number,
                "" if previous is None else f", was {previous}",
                len(ws.jobs),
                "" if len(ws.jobs) == 1 else "s",
            )
        if changed:
            self._merge()
        # The other environments are served; the daemon's pass reports what failed to load.
        self.errors = errors
        return changed

    def _merge(self) -> None:
        jobs: dict[str, Job] = {}
        sensors: dict[str, Sensor] = {}
        pins: dict[str, Pin] = {}
        for name in self.names:
            number = self.active[name]
            if number is None:
                continue
            jobs.update(self._jobs[name])
            sensors.update(self._sensors[name])
            pins.update(dict.fromkeys(self._jobs[name], Pin(name, number)))
        self.workspace.jobs.clear()
        self.workspace.jobs.update(jobs)
        self.workspace.sensors.clear()
        self.workspace.sensors.update(sensors)
        self.pins.clear()
        self.pins.update(pins)

    def origins(self) -> list[dict[str, Any]]:
        """The origins of the active versions (one launch server each)."""
        return [Pin(n, v).origin for n, v in self.active.items() if v is not None]

    def deployment_jobs(self, environment: str) -> list[Job]:
        """The jobs of ``environment`` that fire when a version becomes active there."""
        return [
            j
            for j in self._jobs[environment].values()
            if any(t.type == DEPLOYMENT for t in j.triggers)
        ]

    def describe(self) -> str:
        return "environment" + ("s " if len(self.names) > 1 else " ") + ", ".join(self.names)
