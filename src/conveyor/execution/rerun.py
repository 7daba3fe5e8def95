"""Rerun from failure: which tasks of an earlier run can be reused, and running again."""

from __future__ import annotations

from typing import Any

from conveyor.definitions.job import Job
from conveyor.errors import ExecutionError
from conveyor.execution.launch import INPUT_PREFIX, execute_job
from conveyor.execution.result import RunResult
from conveyor.execution.state import Listener
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import TaskStatus

# Tag of a run that the scheduler queued again after its parent failed
# (execute={"retries": N}); its value counts the retries so far.
RETRY_TAG = "conveyor/retry"


def rerun_job(
    job: Job,
    run_id: str,
    *,
    full: bool = False,
    instance: Instance | None = None,
    raise_on_error: bool = True,
    echo: bool = True,
    listener: Listener | None = None,
    executor: Any = None,
) -> RunResult:
    """Run ``job`` again from run ``run_id`` (see ``Job.rerun``)."""
    inst = instance if instance is not None else Instance.default()
    parent = inst.run(run_id, job_name=job.name)
    if not parent.status.is_terminal:
        raise ExecutionError(f"run {run_id} is still {parent.status}; rerun it once it has ended")
    pointers = inst.result_store.pointers(parent.id)
    inputs = {
        k[len(INPUT_PREFIX) :]: inst.result_store.load(p)
        for k, p in pointers.items()
        if k.startswith(INPUT_PREFIX)
    }
    reuse = {} if full else reusable(job, inst, parent, pointers)
    return execute_job(
        job,
        run_config=parent.run_config,
        selection=parent.selection,
        tags=parent.tags,
        instance=inst,
        raise_on_error=raise_on_error,
        input_values=inputs or None,
        echo=echo,
        listener=listener,
        origin=parent.origin,
        parent=parent,
        reuse=reuse,
        executor=executor,
        # The rerun processes the same slice of data as the run it repeats.
        partition=parent.partition_key,
        interval=(parent.interval_start, parent.interval_end)
        if parent.interval_start is not None and parent.interval_end is not None
        else None,
    )


def reusable(
    job: Job, inst: Instance, parent: RunRecord, pointers: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The parent's succeeded tasks whose results can stand in for running them again."""
    details = inst.run_details(parent.id)
    done = {
        t.key
        for t in details.tasks
        if t.status in (TaskStatus.SUCCESS, TaskStatus.REUSED) and t.key in pointers
    }
    if job.graph is None:
        done.discard(job.name)
        return {k: pointers[k] for k in done}
    redo = {t.key for t in details.tasks if t.key not in done}
    for key in list(redo):
        if key in job.graph:
            redo |= job.graph.descendants(key)
    return {k: pointers[k] for k in done - redo if k in job.graph}
