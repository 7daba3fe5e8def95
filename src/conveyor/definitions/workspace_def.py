"""An explicit workspace: Dagster's ``Definitions(jobs=..., schedules=..., sensors=...,
resources=...)``.

By default a workspace file's jobs are its global ``Job`` objects. A file that
holds a ``Workspace`` object says instead which jobs it serves, and binds
resources once for all of them: the loader (``conveyor.workspace``) then takes
only the jobs this object lists. A job keeps its own resources; the
workspace's fill the keys it lacks, and the keys it declares with ``None``
(``@workflow(resources={"database": None})``: "the workspace provides it",
needed where a workflow's task takes the resource as a parameter).

A Conveyor job carries its own schedule (``schedule=``/``trigger=``), so
``schedules=`` takes jobs that have one, or ``(job, schedule)`` pairs, each
made ``job.to_job(schedule=schedule)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.definitions.job import Job
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.sensor import Sensor
from conveyor.errors import DefinitionError

ScheduledJob = Job | tuple[Job, str | Schedule]


class Workspace:
    """The jobs, schedules, sensors and shared resources of one workspace file.

    Attributes:
        jobs: the jobs by name, each with the workspace's resources bound
            (``jobs=`` then ``schedules=``; a scheduled job replaces the one of
            its name from ``jobs=``).
        sensors: the sensors by name.
        resources: the resources bound to every job that lacks them.
    """

    def __init__(
        self,
        jobs: Sequence[Job] = (),
        schedules: Sequence[ScheduledJob] = (),
        sensors: Sequence[Sensor] = (),
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        """Check and bind the workspace.

        Raises:
            DefinitionError: an item of the wrong kind, two jobs or sensors of one
                name, or a job with a resource declared ``None`` that the
                workspace does not provide.
        """
        if resources is not None and not isinstance(resources, Mapping):
            raise DefinitionError(
                f"Workspace(resources=...): expected a dict of resources by key, got "
                f"{type(resources).__name__}"
            )
        self.resources: dict[str, Any] = dict(resources or {})
        found: dict[str, Job] = {}
        for item in _items(jobs, "jobs"):
            if not isinstance(item, Job):
                raise DefinitionError(
                    f"Workspace(jobs=...): {item!r} is not a job; list @workflow and @job "
                    f"objects (a schedule goes in schedules=)"
                )
            if item.name in found and found[item.name] is not item:
                raise DefinitionError(
                    f"Workspace(jobs=...): two jobs are named {item.name!r}; give one of "
                    f"them another name (.to_job(name=...))"
                )
            found[item.name] = item
        for item in _items(schedules, "schedules"):
            scheduled = _scheduled(item)
            found[scheduled.name] = scheduled
        self.sensors: dict[str, Sensor] = {}
        for sensor in _items(sensors, "sensors"):
            if not isinstance(sensor, Sensor):
                raise DefinitionError(
                    f"Workspace(sensors=...): {sensor!r} is not a sensor; list @sensor functions"
                )
            if sensor.name in self.sensors and self.sensors[sensor.name] is not sensor:
                raise DefinitionError(
                    f"Workspace(sensors=...): two sensors are named {sensor.name!r}; give "
                    f"one of them another name (@sensor(name=...))"
                )
            self.sensors[sensor.name] = sensor
        self.jobs: dict[str, Job] = {name: self.bind(job) for name, job in found.items()}

    def bind(self, job: Job) -> Job:
        """``job`` with the workspace's resources for the keys it lacks or declares ``None``.

        Raises:
            DefinitionError: the job declares a resource ``None`` that the
                workspace does not provide.
        """
        wanted = {k for k, v in job.resources.items() if v is None}
        missing = sorted(wanted - set(self.resources))
        if missing:
            raise DefinitionError(
                f"job {job.name!r} needs resource {missing[0]!r} from its workspace "
                f"(it declares it None), but Workspace(resources=...) has "
                f"{', '.join(sorted(self.resources)) or 'none'}; add {missing[0]!r} there"
            )
        extra = {
            k: v
            for k, v in self.resources.items()
            if k not in job.resources or job.resources[k] is None
        }
        return job.to_job(resources=extra) if extra else job

    def __repr__(self) -> str:
        return (
            f"<Workspace {len(self.jobs)} job{'' if len(self.jobs) == 1 else 's'}, "
            f"{len(self.sensors)} sensor{'' if len(self.sensors) == 1 else 's'}, "
            f"resources: {', '.join(sorted(self.resources)) or 'none'}>"
        )


Definitions = Workspace
"""Dagster's name for ``Workspace``."""


def _items(value: object, option: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise DefinitionError(f"Workspace({option}=...) must be a list, got {value!r}")
    return list(value)


def _scheduled(item: object) -> Job:
    """An item of ``schedules=``: a job with a timed trigger, or ``(job, schedule)``."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Job):
        job: Job = item[0]
        schedule: object = item[1]
        if not isinstance(schedule, str | Schedule):
            raise DefinitionError(
                f"Workspace(schedules=...): the schedule of {job.name!r} must be a cron "
                f"string or a Schedule, got {schedule!r}"
            )
        return job.to_job(schedule=schedule)
    if isinstance(item, Job):
        if item.timed_trigger is None:
            raise DefinitionError(
                f"Workspace(schedules=...): job {item.name!r} has no schedule; give it one "
                f"(schedule='0 6 * * *') or list it as (job, '0 6 * * *')"
            )
        return item
    raise DefinitionError(
        f"Workspace(schedules=...): {item!r} must be a job with a schedule or a "
        f"(job, schedule) pair such as (nightly, '0 6 * * *')"
    )
