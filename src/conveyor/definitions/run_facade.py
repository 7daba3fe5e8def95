"""The one door from the definitions up to the layers that run and record jobs.

``Job.run``, ``rerun``, ``backfill``, ``runs``, ``run_details``, ``logs`` and
``result`` are conveniences for people at a prompt; the work is done by
execution, the scheduler and storage, which all sit above the definitions and
import them. Every call from a ``Job`` into those layers goes through this
module, and the layer contracts in ``pyproject.toml`` (checked by
``lint-imports``) name it as the one module of ``conveyor.definitions`` that may
import upward. Those imports stay inside the functions, so that importing the
definitions loads no database, executor or process code.

The run-related types (``RunResult``, ``Instance``...) are re-exported for type
checking only, so that ``job.py`` can annotate with them without naming a
higher layer itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from conveyor.definitions.job import Job
    from conveyor.definitions.pipeline_run import PipelineBody
    from conveyor.execution.result import RunResult as RunResult
    from conveyor.scheduler.backfill import BackfillResult as BackfillResult
    from conveyor.storage.instance import Instance as Instance
    from conveyor.storage.records import RunDetails as RunDetails
    from conveyor.storage.records import RunRecord as RunRecord


def run(
    job: Job,
    run_config: Mapping[str, Any] | None,
    *,
    selection: str | Sequence[str] | None,
    tags: Mapping[str, str] | None,
    instance: Instance | None,
    raise_on_error: bool,
    input_values: Mapping[str, Any] | None,
    executor: Any,
    partition: str | None,
    interval: Any,
    version: int | str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``job`` in this process and record the run (see ``Job.run``); with ``version``,
    the job of that deployed version instead, with ``resources`` laid over its own."""
    from conveyor.execution.launch import execute_job

    pinned: dict[str, Any] = {}
    if version is not None:
        from conveyor.execution.environments import version_workspace
        from conveyor.execution.rerun import parse_version

        inst = _instance(instance)
        chosen = parse_version(version)
        if chosen == "latest":
            newest = inst.deployments.latest()
            if newest is None:
                from conveyor.errors import ConfigError

                raise ConfigError(
                    f"{job.name}.run(version='latest'): no version has been deployed yet "
                    f"(conveyor deploy)"
                )
            chosen = newest.number
        assert isinstance(chosen, int)
        job = version_workspace(inst, chosen).job(job.name)
        if resources:
            job = job.to_job(resources=resources)
        instance = inst
        pinned = {"origin": {"version": chosen, "job": job.name}, "deployed_version": chosen}
    return execute_job(
        job,
        run_config=run_config,
        selection=selection,
        tags=tags,
        instance=instance,
        raise_on_error=raise_on_error,
        input_values=input_values,
        executor=executor,
        partition=partition,
        interval=interval,
        **pinned,
    )


def rerun(
    job: Job,
    run_id: str,
    *,
    full: bool,
    run_config: Mapping[str, Any] | None,
    instance: Instance | None,
    raise_on_error: bool,
    executor: Any,
    version: int | str | None = None,
) -> RunResult:
    """Run ``job`` again from a previous run (see ``Job.rerun``): a run of a deployed
    version with that version's job, or with ``version``'s."""
    from conveyor.execution.rerun import rerun_job, rerun_origin
    from conveyor.execution.runner import load_origin

    inst = _instance(instance)
    parent = inst.run(inst.run_store.resolve_id(run_id), job_name=None)
    origin = None
    if parent.job_name not in (job.name, f"{parent.environment}.{job.name}"):
        from conveyor.errors import NotFoundError

        raise NotFoundError(
            f"run {parent.id} is a run of job {parent.job_name!r}, not {job.name!r}"
        )
    if version is not None or parent.deployed_version is not None:
        origin = rerun_origin(inst, parent, version)
        job = load_origin(origin, inst).job(parent.job_name)
    return rerun_job(
        job,
        parent.id,
        full=full,
        run_config=run_config,
        instance=inst,
        raise_on_error=raise_on_error,
        executor=executor,
        origin=origin,
    )


def backfill(
    job: Job,
    start: Any,
    end: Any,
    *,
    partitions: Sequence[str] | None,
    instance: Instance | None,
) -> BackfillResult:
    """Queue the runs that fill ``job``'s missing intervals or partitions."""
    from conveyor.scheduler.backfill import backfill

    return backfill(job, start, end, partitions=partitions, instance=instance)


def runs(
    job: Job,
    *,
    limit: int,
    status: str | None,
    instance: Instance | None,
    start_time: datetime | float | str | None = None,
    end_time: datetime | float | str | None = None,
) -> list[RunRecord]:
    """The most recent runs of ``job``, newest first.

    ``start_time`` and ``end_time`` (Datatailr's filters) keep the runs that
    started at or after ``start_time`` and before ``end_time``; a run that has
    not started yet matches neither. Each is a ``datetime`` (a naive one is
    UTC), UTC epoch seconds, or an ISO string such as ``"2026-04-29T11:00"``.
    """
    if start_time is None and end_time is None:
        return _instance(instance).runs(job.name, limit=limit, status=status)
    from conveyor.storage.run_queries import RunFilter

    after = None if start_time is None else moment(start_time, "start_time")
    before = None if end_time is None else moment(end_time, "end_time")
    if after is not None and before is not None and not after < before:
        raise ConfigError(
            f"{job.name}.runs(start_time={start_time!r}, end_time={end_time!r}): the start "
            f"must be before the end"
        )
    found = _instance(instance).query_runs(
        RunFilter(
            job_names=(job.name,),
            statuses=() if status is None else (status,),
            started_after=after,
            started_before=before,
        ),
        limit=limit,
    )
    return found.runs


def moment(value: object, name: str) -> float:
    """``value`` (a datetime, naive taken as UTC; epoch seconds; an ISO string) as UTC
    epoch seconds.

    Raises:
        ConfigError: naming ``name`` and the forms it takes.
    """
    forms = (
        f"{name}={value!r}: give a datetime (naive is UTC), UTC epoch seconds, or an ISO "
        f"string such as '2026-04-29T11:00:00'"
    )
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(forms) from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(forms)
    return float(value)


def run_details(job: Job, run_id: str, *, instance: Instance | None) -> RunDetails:
    """A run of ``job`` with its tasks, each with the ``resources`` (cpu, memory) its
    attempts recorded when they started: what that version ran with, whatever the job
    says today."""
    return _instance(instance).run_details(run_id, job_name=job.name)


def logs(
    job: Job,
    run_id: str,
    task_name: str,
    *,
    stderr: bool,
    lines: int,
    instance: Instance | None,
) -> str:
    """The last ``lines`` lines a task of ``job`` wrote in a run."""
    return _instance(instance).logs(
        run_id, task_name, stderr=stderr, lines=lines, job_name=job.name
    )


def result(job: Job, run_id: str, task_name: str, *, instance: Instance | None) -> Any:
    """The stored output of a task of ``job`` in a run."""
    return _instance(instance).result(run_id, task_name, job_name=job.name)


def _instance(instance: Instance | None) -> Instance:
    from conveyor.storage.instance import Instance

    return instance if instance is not None else Instance.default()


def run_pipeline_body(body: PipelineBody, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a ``@pipeline_run`` body: the run's interval into dlt, the load info out."""
    from conveyor.execution.dlt_runs import run_pipeline_body as run_body

    return run_body(body, args, kwargs)
