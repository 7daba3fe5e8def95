"""Rerun from failure: which tasks of an earlier run can be reused, and running again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.job import Job
from conveyor.errors import ConfigError, ConveyorError, ExecutionError
from conveyor.execution.launch import INPUT_PREFIX, execute_job, prepare
from conveyor.execution.result import RunResult
from conveyor.execution.state import Listener
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus, TaskStatus

# Tag of a run that the scheduler queued again after its parent failed
# (execute={"retries": N}); its value counts the retries so far.
RETRY_TAG = "conveyor/retry"
# Tag of a rerun queued through the API or the UI: "failure" (the parent's succeeded
# tasks are reused) or "full" (every task runs again).
RERUN_TAG = "conveyor/rerun"


@dataclass(frozen=True, slots=True)
class Rerun:
    """What a rerun repeats (``plan_rerun``): the run, its config, inputs and reuse."""

    parent: RunRecord
    run_config: Mapping[str, Any]
    inputs: dict[str, Any]
    reuse: dict[str, dict[str, Any]]


def plan_rerun(
    job: Job,
    run_id: str,
    *,
    full: bool = False,
    run_config: Mapping[str, Any] | None = None,
    instance: Instance,
) -> Rerun:
    """Check that run ``run_id`` can be rerun, and find what its rerun reuses.

    Raises:
        ExecutionError: the run has not ended, or it succeeded and neither
            ``full`` nor a different ``run_config`` gives anything to run again.
    """
    parent = instance.run(run_id, job_name=job.name)
    if not parent.status.is_terminal:
        raise ExecutionError(f"run {run_id} is still {parent.status}; rerun it once it has ended")
    pointers = instance.result_store.pointers(parent.id)
    inputs = {
        k[len(INPUT_PREFIX) :]: instance.result_store.load(p)
        for k, p in pointers.items()
        if k.startswith(INPUT_PREFIX)
    }
    config = parent.run_config if run_config is None else run_config
    if full:
        return Rerun(parent, config, inputs, {})
    changed = changed_by_config(job, parent, config, inputs or None)
    if parent.status is RunStatus.SUCCESS and not changed:
        raise ExecutionError(
            f"run {parent.id} of job {job.name!r} succeeded, so there is nothing to rerun from "
            f"failure: to run every task again, pass full=True (conveyor rerun "
            f"{parent.id[:8]} --full); to run with other config, pass run_config (--config FILE)"
        )
    return Rerun(parent, config, inputs, reusable(job, instance, parent, pointers, changed=changed))


def parse_version(value: str | int | None) -> str | int | None:
    """``--version`` of a rerun: ``latest``, a version number, or ``None`` (the run's own).

    Raises:
        ConfigError: anything else.
    """
    if value is None or value == "latest":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) >= 1:
        return int(value)
    raise ConfigError(
        f"version={value!r}: give 'latest' (the active version of the run's environment) or "
        f"a version number (1, 2, ...; conveyor versions lists them)"
    )


def rerun_origin(
    instance: Instance, parent: RunRecord, version: str | int | None = None
) -> dict[str, Any]:
    """Where the code of a rerun of ``parent`` comes from: by default the code ``parent``
    ran (its origin: a deployed version, or the files); ``"latest"``: the version active
    in its environment now (for a run of no environment, the newest version); ``N``:
    version ``N`` (scoped to the run's environment, if it has one).

    Raises:
        ConfigError: ``version`` is neither.
        NotFoundError: no version ``N``, or none deployed yet.
    """
    chosen = parse_version(version)
    if chosen is None:
        return dict(parent.origin or {})
    env = parent.environment
    if chosen == "latest":
        if env is not None:
            number = instance.deployments.environment(env).active_version
            if number is None:
                raise ConfigError(
                    f"run {parent.id[:8]} ran in environment {env!r}, which has no active "
                    f"version now; give a version number (conveyor versions lists them)"
                )
        else:
            newest = instance.deployments.latest()
            if newest is None:
                raise ConfigError(
                    "version='latest': no version has been deployed yet (conveyor deploy)"
                )
            number = newest.number
    else:
        assert isinstance(chosen, int)
        number = instance.deployments.version(chosen).number
    where: dict[str, Any] = {"version": number, "job": parent.job_name}
    if env is not None:
        where["environment"] = env
    return where


def rerun_job(
    job: Job,
    run_id: str,
    *,
    full: bool = False,
    run_config: Mapping[str, Any] | None = None,
    instance: Instance | None = None,
    raise_on_error: bool = True,
    echo: bool = True,
    listener: Listener | None = None,
    executor: Any = None,
    planned: Rerun | None = None,
    origin: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``job`` again from run ``run_id`` (see ``Job.rerun``); ``planned``: what
    ``plan_rerun`` found for it already; ``origin``: where ``job``'s code comes from
    when not from where the run's did (``rerun_origin``), so the rerun records it."""
    inst = instance if instance is not None else Instance.default()
    if planned is None:
        planned = plan_rerun(job, run_id, full=full, run_config=run_config, instance=inst)
    parent = planned.parent
    where = dict(parent.origin or {}) if origin is None else dict(origin)
    deployed = where.get("version")
    return execute_job(
        job,
        run_config=planned.run_config,
        selection=parent.selection,
        tags=parent.tags,
        instance=inst,
        raise_on_error=raise_on_error,
        input_values=planned.inputs or None,
        echo=echo,
        listener=listener,
        origin=where or None,
        deployed_version=None if deployed is None else int(deployed),
        environment=where.get("environment") if deployed is not None else None,
        parent=parent,
        reuse=planned.reuse,
        executor=executor,
        # The rerun processes the same slice of data as the run it repeats.
        partition=parent.partition_key,
        interval=(parent.interval_start, parent.interval_end)
        if parent.interval_start is not None and parent.interval_end is not None
        else None,
    )


def changed_by_config(
    job: Job,
    parent: RunRecord,
    run_config: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
) -> set[str]:
    """The task keys whose config (or resources) differ between ``parent``'s config and
    ``run_config``: they run again, with everything downstream.

    Values are compared once validated, so a default written out is no change. A
    ``@job`` body decides at run time what its steps get, so any change there
    reruns all of it; so does a parent config that no longer validates.
    """
    if run_config is None or dict(run_config) == parent.run_config:
        return set()
    everything = set(job.graph.nodes) if job.graph is not None else {job.name}
    key = parent.partition_key
    _, new = prepare(job, run_config, parent.selection, inputs, key)
    try:
        _, old = prepare(job, parent.run_config, parent.selection, inputs, key)
    except ConveyorError:
        return everything
    resources = {k for k in new.resources if new.resources[k] != old.resources.get(k)}
    if job.graph is None:
        steps = new.raw.get("tasks") == old.raw.get("tasks")
        same = new.job_config == old.job_config and not resources and steps
        return set() if same else everything
    changed = set()
    for key in new.task_configs.keys() | old.task_configs.keys():
        if new.task_configs.get(key) != old.task_configs.get(key):
            changed.add(key)
    for key, node in job.graph.nodes.items():
        if resources & {p.name for p in node.task.params}:
            changed.add(key)
    return changed


def reusable(
    job: Job,
    inst: Instance,
    parent: RunRecord,
    pointers: dict[str, dict[str, Any]],
    *,
    changed: set[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The parent's succeeded tasks whose results can stand in for running them again;
    tasks in ``changed`` (and, in a graph, their descendants) run again."""
    details = inst.run_details(parent.id)
    done = {
        t.key
        for t in details.tasks
        if t.status in (TaskStatus.SUCCESS, TaskStatus.REUSED) and t.key in pointers
    }
    if job.graph is None:
        if changed:
            return {}
        done.discard(job.name)
        return {k: pointers[k] for k in done}
    redo = {t.key for t in details.tasks if t.key not in done} | (changed or set())
    for key in list(redo):
        if key in job.graph:
            redo |= job.graph.descendants(key)
    return {k: pointers[k] for k in done - redo if k in job.graph}
