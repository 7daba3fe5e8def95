"""Running a job in this process: validate, record, execute, close, report.

``execute_job`` is what ``Job.run`` calls. Bad input (selection, config,
inputs) raises before a run is recorded; from then on, every outcome,
including Ctrl-C, ends with the run in a final state.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.definitions.context import RunContext
from conveyor.definitions.frames import current_frame
from conveyor.definitions.job import Job
from conveyor.definitions.retry import NO_RETRY
from conveyor.errors import (
    ConfigError,
    ConveyorError,
    ExecutionError,
    SelectionError,
    UserCodeError,
)
from conveyor.execution.capture import make_logger, routed_streams
from conveyor.execution.dynamic import JobFrame
from conveyor.execution.engine import run_plan
from conveyor.execution.plan import Plan, build_plan
from conveyor.execution.resources import opened
from conveyor.execution.result import RunResult
from conveyor.execution.runconfig import validate_run_config
from conveyor.execution.state import Listener, RunState
from conveyor.execution.steps import StepSpec, injections, run_attempt
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus, TaskStatus

INPUT_PREFIX = "input:"


def default_origin(job: Job) -> dict[str, Any]:
    """Where the job was loaded from, so that a later process can load it again."""
    origin: dict[str, Any] = {"module": job.fn.__module__, "attr": job.fn.__name__}
    try:
        origin["file"] = inspect.getsourcefile(job.fn)
    except TypeError:
        pass
    return origin


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(tags or {})
    for k, v in out.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ConfigError(f"tags: {k!r}: {v!r}: tags map strings to strings")
    return out


def execute_job(
    job: Job,
    *,
    run_config: Mapping[str, Any] | None = None,
    selection: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    instance: Instance | None = None,
    raise_on_error: bool = True,
    input_values: Mapping[str, Any] | None = None,
    echo: bool = True,
    listener: Listener | None = None,
    origin: Mapping[str, Any] | None = None,
    parent: RunRecord | None = None,
    reuse: Mapping[str, dict[str, Any]] | None = None,
) -> RunResult:
    """Run ``job`` in this process and return its ``RunResult`` (see ``Job.run``)."""
    if current_frame.get() is not None:
        raise ExecutionError(
            f"job {job.name!r} cannot be run from inside a workflow definition or a running "
            f"job body; call its tasks instead"
        )
    inst = instance if instance is not None else Instance.default()
    run_tags = {**job.tags, **_check_tags(tags)}
    plan: Plan | None = None
    if job.graph is not None:
        plan = build_plan(job.graph, selection, input_values)
    elif selection is not None:
        raise SelectionError(
            f"selection applies to @workflow graphs; @job {job.name!r} makes its steps at run time"
        )
    elif input_values:
        raise ConfigError(f"input_values apply to selected @workflow runs, not @job {job.name!r}")
    cfg = validate_run_config(job, run_config, plan.steps if plan is not None else None)
    run = inst.run_store.create(
        job_name=job.name,
        job_version=job.version,
        tags=run_tags,
        run_config=cfg.raw,
        selection=plan.selection if plan is not None else None,
        origin=origin if origin is not None else default_origin(job),
        parent_run_id=parent.id if parent is not None else None,
        root_run_id=(parent.root_run_id or parent.id) if parent is not None else None,
        then=RunStatus.RUNNING,
    )
    rec = inst.recorder(run.id)
    state = RunState(
        run_id=run.id,
        job=job,
        instance=inst,
        recorder=rec,
        config=cfg,
        tags=run_tags,
        echo=echo,
        listener=listener,
        reuse=dict(reuse or {}),
    )
    run_error: ConveyorError | None = None
    try:
        with routed_streams():
            if plan is not None:
                _record_plan(state, plan)
            try:
                with opened(cfg.resources, _needed_resources(job, plan)) as ready:
                    state.resources = ready
                    if plan is not None:
                        run_plan(state, plan)
                    else:
                        _run_body(state)
            except UserCodeError as e:  # a resource's setup or teardown
                run_error = e
                _end_pending(state, TaskStatus.SKIPPED, f"not run: {e}")
    except BaseException as stop:
        _cancel(state, stop)
        raise
    status, error = _outcome(job, state, run_error)
    _run_job_hooks(state, status, error)
    rec.close(run_status=status, error=None if error is None else str(error))
    result = RunResult(
        run_id=run.id,
        job_name=job.name,
        status=status,
        outputs=state.outputs,
        statuses=state.statuses,
        failures=state.failures,
        error=error,
        instance=inst,
    )
    if raise_on_error and not result.success:
        result.raise_error()
    return result


def _needed_resources(job: Job, plan: Plan | None) -> set[str] | None:
    if plan is None:
        return None
    names = {p.name for node in plan.steps.values() for p in node.task.params}
    return names & set(job.resources)


def _record_plan(state: RunState, plan: Plan) -> None:
    rec = state.recorder
    now = time.time()
    for key, value in plan.inputs.items():
        _store_input(state, key, value)
    for key, node in plan.steps.items():
        pointer = state.reuse.get(key)
        if pointer is not None:
            state.outputs[key] = state.instance.result_store.load(pointer)
            rec.task(
                key,
                1,
                TaskStatus.REUSED,
                task_name=node.task.name,
                depends_on=list(node.deps),
                ended_at=now,
            )
            rec.reuse_result(key, pointer)
            state.set_status(key, TaskStatus.REUSED)
        else:
            rec.task(
                key, 1, TaskStatus.PENDING, task_name=node.task.name, depends_on=list(node.deps)
            )
            state.statuses[key] = TaskStatus.PENDING


def _store_input(state: RunState, key: str, value: Any) -> None:
    """Keep a given upstream value with the run, so that a rerun can use it again."""
    try:
        state.recorder.result(INPUT_PREFIX + key, value)
    except ConveyorError as e:
        state.recorder.event("result_not_stored", f"input value of {key!r}: {e}")


def _run_body(state: RunState) -> None:
    job = state.job
    frame = JobFrame(state)
    is_async = inspect.iscoroutinefunction(job.fn)

    async def async_body(*args: Any, **kwargs: Any) -> Any:
        token = current_frame.set(frame)
        try:
            return await job.fn(*args, **kwargs)
        finally:
            current_frame.reset(token)

    def body(*args: Any, **kwargs: Any) -> Any:
        token = current_frame.set(frame)
        try:
            return job.fn(*args, **kwargs)
        finally:
            current_frame.reset(token)

    spec = StepSpec(
        key=job.name,
        name=job.name,
        fn=async_body if is_async else body,
        is_async=is_async,
        args=(),
        kwargs={},
        inject=injections(job.params, 0, {}, state.resources, job_body=True),
        config=state.config.job_config,
        retry=NO_RETRY,
        timeout=None,
        on_success=(),
        on_failure=(),
        depends_on=[],
    )
    try:
        outcome = run_attempt(state, spec, 1)
    finally:
        frame.close()
    if outcome.status is TaskStatus.SUCCESS:
        state.outputs[job.name] = outcome.value
    else:
        assert outcome.error is not None
        state.failures.setdefault(job.name, outcome.error)


def _outcome(
    job: Job, state: RunState, run_error: ConveyorError | None
) -> tuple[RunStatus, ConveyorError | None]:
    if run_error is not None:
        return RunStatus.FAILURE, run_error
    # A @job body that handles a step's error decides the outcome itself.
    failed = job.name in state.failures if job.graph is None else bool(state.failures)
    if not failed:
        return RunStatus.SUCCESS, None
    return RunStatus.FAILURE, next(iter(state.failures.values()))


def _end_pending(state: RunState, status: TaskStatus, message: str) -> None:
    now = time.time()
    for key, st in list(state.statuses.items()):
        if st is TaskStatus.PENDING:
            state.recorder.task(key, 1, status, ended_at=now, error_message=message)
            state.set_status(key, status)


def _cancel(state: RunState, stop: BaseException) -> None:
    """End a run stopped by Ctrl-C or an internal error: pending tasks canceled, run final."""
    try:
        _end_pending(state, TaskStatus.CANCELED, f"not run: the run was stopped ({stop!r})")
        if isinstance(stop, KeyboardInterrupt | SystemExit):
            state.recorder.close(run_status=RunStatus.CANCELING)
            state.instance.run_store.set_status(
                state.run_id, RunStatus.CANCELED, error="stopped by the user"
            )
        else:
            state.recorder.close(
                run_status=RunStatus.FAILURE, error=f"internal error: {type(stop).__name__}: {stop}"
            )
    except Exception:  # the original error matters more than a failed bookkeeping write
        pass


def _run_job_hooks(state: RunState, status: RunStatus, error: ConveyorError | None) -> None:
    job = state.job
    hooks = job.on_success if status is RunStatus.SUCCESS else job.on_failure
    if not hooks:
        return
    ctx = RunContext(
        run_id=state.run_id,
        job_name=job.name,
        tags=state.tags,
        config=state.config.job_config,
        resources=state.resources,
        log_factory=make_logger,
    )
    original = error.original if isinstance(error, UserCodeError) else error
    for hook in hooks:
        name = getattr(hook, "__name__", repr(hook))
        try:
            if status is RunStatus.SUCCESS:
                hook(ctx)
            else:
                try:
                    params = len(inspect.signature(hook).parameters)
                except (TypeError, ValueError):
                    params = 2
                hook(ctx, original) if params >= 2 else hook(ctx)
        except Exception as e:
            err = UserCodeError(f"hook {name!r} of job {job.name!r}", e)
            state.recorder.event("hook_error", str(err), data={"traceback": err.traceback_text})


def rerun_job(
    job: Job,
    run_id: str,
    *,
    full: bool = False,
    instance: Instance | None = None,
    raise_on_error: bool = True,
    echo: bool = True,
    listener: Listener | None = None,
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
    reuse: dict[str, dict[str, Any]] = {}
    if not full:
        reuse = _reusable(job, inst, parent, pointers)
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
    )


def _reusable(
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
