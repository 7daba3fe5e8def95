"""Running a job: validate, record, execute on an executor, close, report.

``execute_job`` is what ``Job.run`` calls; ``execute_run`` runs a run that
was recorded elsewhere (``conveyor run --detach``). Bad input (selection,
config, inputs) raises before a run is recorded; from then on every outcome,
including Ctrl-C and cancel requests, ends with the run in a final state.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.definitions.context import RunContext
from conveyor.definitions.frames import current_frame
from conveyor.definitions.intervals import Interval, parse_moment
from conveyor.definitions.job import Job
from conveyor.errors import (
    ConfigError,
    ConveyorError,
    ExecutionError,
    JournalKeptError,
    LeaseLostError,
    RunCanceledError,
    SelectionError,
    UserCodeError,
)
from conveyor.execution.capture import make_logger, routed_streams
from conveyor.execution.executors import Executor, resolve_executor
from conveyor.execution.monitor import RunMonitor
from conveyor.execution.plan import Plan, build_plan
from conveyor.execution.resources import opened
from conveyor.execution.result import RunResult
from conveyor.execution.runconfig import RunConfig, validate_run_config
from conveyor.execution.secrets import resolve_run
from conveyor.execution.state import Listener, RunState
from conveyor.execution.timeouts import RunCanceled
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.runs import local_launcher
from conveyor.storage.states import RunStatus, TaskStatus

INPUT_PREFIX = "input:"

log = logging.getLogger("conveyor")


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


def prepare(
    job: Job,
    run_config: Mapping[str, Any] | None,
    selection: str | Sequence[str] | None,
    input_values: Mapping[str, Any] | None,
    partition: str | None = None,
) -> tuple[Plan | None, RunConfig]:
    """Check everything a run needs before one is recorded (of ``partition``, whose
    default config ``partition_config`` may give)."""
    if current_frame.get() is not None:
        raise ExecutionError(
            f"job {job.name!r} cannot be run from inside a workflow definition or a running "
            f"job body; call its tasks instead"
        )
    plan: Plan | None = None
    if job.graph is not None:
        plan = build_plan(job.graph, selection, input_values)
    elif selection is not None:
        raise SelectionError(
            f"selection applies to @workflow graphs; @job {job.name!r} makes its steps at run time"
        )
    elif input_values:
        raise ConfigError(f"input_values apply to selected @workflow runs, not @job {job.name!r}")
    steps = plan.steps if plan is not None else None
    cfg = validate_run_config(job, run_config, steps, partition)
    return plan, cfg


def execute_job(
    job: Job,
    *,
    run_config: Mapping[str, Any] | None = None,
    selection: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    instance: Instance | None = None,
    raise_on_error: bool = True,
    input_values: Mapping[str, Any] | None = None,
    executor: Any = None,
    echo: bool = True,
    listener: Listener | None = None,
    origin: Mapping[str, Any] | None = None,
    parent: RunRecord | None = None,
    reuse: Mapping[str, dict[str, Any]] | None = None,
    partition: str | None = None,
    interval: Interval | tuple[Any, Any] | None = None,
    launched_by: str | None = None,
    deployed_version: int | None = None,
    environment: str | None = None,
) -> RunResult:
    """Run ``job`` in this process and return its ``RunResult`` (see ``Job.run``).

    The run records ``launched_by``, by default the OS user of this process
    (``local:<user>``), and the deployed version whose code ``job`` is, with its
    environment (``None``: the files on disk).
    """
    inst = instance if instance is not None else Instance.default()
    run_tags = {**job.run_tags, **_check_tags(tags)}
    key = check_partition(job, partition)
    plan, cfg = prepare(job, run_config, selection, input_values, key)
    span = as_interval(interval)
    chosen = resolve_executor(executor if executor is not None else job.executor)
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
        interval=None if span is None else (span.start.timestamp(), span.end.timestamp()),
        partition=key,
        launched_by=launched_by if launched_by is not None else local_launcher(),
        deployed_version=deployed_version,
        environment=environment,
    )
    state = _state(run, job, inst, cfg, echo=echo, listener=listener, reuse=reuse)
    failed = _resolve_secrets(state)
    if failed is not None:
        return _result(state, RunStatus.FAILURE, failed, raise_on_error)
    return _execute(state, plan, chosen, raise_on_error)


def check_partition(job: Job, partition: object) -> str | None:
    """The partition key of a run of ``job``, checked against the job's partitions: a
    partitioned job's run needs one."""
    if job.partitions is None:
        if partition is None:
            return None
        raise ConfigError(
            f"job {job.name!r} has no partitions, so a run cannot take partition "
            f"{partition!r}; give the job partitions=StaticPartitions([...])"
        )
    return job.partitions.check(partition, f"job {job.name!r}")


def as_interval(value: Interval | tuple[Any, Any] | None) -> Interval | None:
    """``interval=`` of a manual run: an ``Interval`` or a ``(start, end)`` pair of dates."""
    if value is None or isinstance(value, Interval):
        return value
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(
            f"interval={value!r} must be a (start, end) pair, e.g. ('2026-11-01', '2026-11-02')"
        )
    start, end = value
    return Interval(parse_moment(start, "interval start"), parse_moment(end, "interval end"))


def execute_run(
    run_id: str,
    job: Job,
    *,
    instance: Instance,
    token: int | None = None,
    executor: Any = None,
    echo: bool = False,
    reuse: Mapping[str, dict[str, Any]] | None = None,
    supervised: bool = False,
) -> RunResult:
    """Execute start ``token`` of a run that another process recorded ``starting``.

    The run is claimed here (``starting`` to ``running``), unless a
    supervising process claimed it already (``supervised``: it also
    heartbeats for the run). ``LeaseLostError`` if the start is not
    ``token``'s any more: it was put back in the queue or canceled.
    Without ``token``, the run's current start is claimed.
    """
    run = instance.run(run_id, job_name=job.name)
    if token is None:
        token = run.token
    if not (supervised and run.status is RunStatus.RUNNING and run.token == token):
        run = instance.run_store.claim(run_id, token)
    try:
        plan, cfg = prepare(job, run.run_config, run.selection, None, run.partition_key)
    except ConveyorError as e:
        instance.run_store.set_status(run_id, RunStatus.FAILURE, error=str(e), token=token)
        raise
    state = _state(run, job, instance, cfg, echo=echo, reuse=reuse)
    failed = _resolve_secrets(state)
    if failed is not None:
        raise failed
    return _execute(
        state,
        plan,
        resolve_executor(executor if executor is not None else job.executor),
        raise_on_error=False,
        supervised=supervised,
    )


def _state(
    run: RunRecord,
    job: Job,
    instance: Instance,
    cfg: RunConfig,
    *,
    echo: bool,
    listener: Listener | None = None,
    reuse: Mapping[str, dict[str, Any]] | None = None,
) -> RunState:
    """The state of recorded run ``run`` as it starts executing here."""
    recorder = instance.recorder(run.id, run.token)
    recorder.redactor = cfg.redactor
    return RunState(
        run_id=run.id,
        job=job,
        instance=instance,
        recorder=recorder,
        token=run.token,
        config=cfg,
        tags=run.tags,
        echo=echo,
        listener=listener,
        reuse=dict(reuse or {}),
        interval=_interval(run),
        partition=run.partition_key,
    )


def _resolve_secrets(state: RunState) -> ConveyorError | None:
    """Resolve the run's ``Secret`` references, in its own process, before any task; the
    error that failed the run (recorded) when one cannot be resolved."""
    try:
        resolve_run(
            state.config,
            state.instance.secrets,
            reader=f"run:{state.run_id} ({state.job.name})",
        )
    except ConveyorError as e:
        state.instance.run_store.set_status(
            state.run_id, RunStatus.FAILURE, error=str(e), token=state.token
        )
        _release(state)
        return e
    return None


def _interval(run: RunRecord) -> Interval | None:
    if run.interval_start is None or run.interval_end is None:
        return None
    return Interval(run.interval_start, run.interval_end)


def _execute(
    state: RunState,
    plan: Plan | None,
    executor: Executor,
    raise_on_error: bool,
    *,
    supervised: bool = False,
) -> RunResult:
    job, rec = state.job, state.recorder
    in_process = getattr(executor, "runs_here", False)
    run_error: ConveyorError | None = None
    monitor = RunMonitor(state, heartbeat=not supervised)
    rec.on_lost = monitor.lose
    try:
        with routed_streams(), monitor:
            if plan is not None:
                _record_plan(state, plan)
            try:
                # Out-of-process executors set resources up where the tasks run; a
                # @job body runs here and may take any of the job's resources.
                needed = _needed_resources(job, plan) if in_process or plan is None else set()
                with opened(state.config.resources, needed) as ready:
                    state.resources = ready
                    executor.run(state, plan)
            except UserCodeError as e:  # a resource's setup or teardown
                run_error = e
                _end_pending(state, TaskStatus.SKIPPED, f"not run: {e}")
    except BaseException as stop:
        if state.lost is not None:
            return _result(state, RunStatus.FAILURE, LeaseLostError(state.lost), raise_on_error)
        _release(state)
        requested = state.cancel_requested.is_set() and isinstance(
            stop, RunCanceled | KeyboardInterrupt
        )
        _stop(state, stop, requested)
        if not requested:
            raise
        return _result(
            state,
            RunStatus.CANCELED,
            RunCanceledError(f"run {state.run_id} was canceled"),
            raise_on_error,
        )
    status, error = _outcome(job, state, run_error)
    _run_job_hooks(state, status, error)
    try:
        rec.close(run_status=status, error=None if error is None else str(error))
    except (LeaseLostError, JournalKeptError) as e:
        # The run's outcome could not be recorded: say so rather than pretend.
        log.error("%s", e)
        return _result(state, RunStatus.FAILURE, e, raise_on_error)
    _release(state)
    return _result(state, status, error, raise_on_error)


def _release(state: RunState) -> None:
    """Free the run's slots. If the database is away, they are free anyway once the run
    has ended (a slot of an ended run is free to take: ``storage.leases``)."""
    try:
        state.instance.lease_store.release(state.run_id)
    except Exception as e:
        log.warning("run %s: its slots were not freed now (%s)", state.run_id[:8], e)


def _result(
    state: RunState, status: RunStatus, error: ConveyorError | None, raise_on_error: bool
) -> RunResult:
    result = RunResult(
        run_id=state.run_id,
        job_name=state.job.name,
        status=status,
        outputs=state.outputs,
        statuses=state.statuses,
        failures=state.failures,
        error=error,
        instance=state.instance,
        redactor=state.config.redactor,
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


def _stop(state: RunState, stop: BaseException, requested: bool) -> None:
    """End a run that was stopped: its pending tasks canceled, the run in a final state."""
    try:
        if requested:
            why = "not run: the run was canceled"
        else:
            why = f"not run: the run was stopped ({type(stop).__name__})"
        _end_pending(state, TaskStatus.CANCELED, why)
        store = state.instance.run_store
        if requested or isinstance(stop, KeyboardInterrupt | SystemExit | RunCanceled):
            already = store.get(state.run_id).status is RunStatus.CANCELING
            state.recorder.close(run_status=None if already else RunStatus.CANCELING)
            # Tasks still open end with the run, in its transaction: a step whose stop was
            # cut short (a second Ctrl-C while its process was being stopped) included.
            state.instance.end_lost_run(
                state.run_id,
                "canceled on request" if requested else "stopped by the user",
                state.token,
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
        interval=state.interval,
        refresh=state.meta.refresh,
        partition=state.partition,
        partition_window=state.meta.partition_window,
        partition_keys=state.meta.partition_keys,
        # The hook is told which task failed, with the error it receives.
        task_key=next((k for k, e in state.failures.items() if e is error), None),
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
