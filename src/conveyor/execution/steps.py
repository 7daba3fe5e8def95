"""Running one step: an attempt with its capture, timeout, hooks and records.

An attempt has three parts. ``begin`` records it ``running``; ``call_task``
calls the user's function with its parameters filled, its output captured
and its timeout armed, and returns a picklable ``Report``; ``finish`` stores
the logs and the result, records the end state, runs the hooks and decides
whether to retry. ``begin`` and ``finish`` always run in the run's own
process, where the recorder batches the writes; ``call_task`` runs there too
(in-process executor) or in a worker process or a Dask worker.

Nothing here interrupts a running function: a plain task past its timeout
fails when it returns, an ``async`` one is cancelled at its next ``await``;
the multiprocess executor stops a late step by killing its process tree.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor.definitions.config import raw_config_value
from conveyor.definitions.context import TaskContext
from conveyor.definitions.params import Param, ParamKind
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.task import Hook, Task
from conveyor.errors import (
    ConveyorError,
    ExecutionError,
    StorageError,
    TaskTimeoutError,
    UserCodeError,
)
from conveyor.execution.aio import run_coroutine
from conveyor.execution.capture import Capture, current_capture, make_logger, written
from conveyor.execution.state import RunMeta, RunState
from conveyor.storage.redact import redactor_of
from conveyor.storage.states import TaskStatus

log = logging.getLogger("conveyor")

# How a parameter is filled at call time.
CONTEXT, CONFIG, RESOURCE, FIELD = "context", "config", "resource", "field"


@dataclass(slots=True)
class StepSpec:
    """Everything needed to run one step, whatever made it."""

    key: str
    name: str
    fn: Callable[..., Any]
    is_async: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inject: tuple[tuple[str, str], ...]
    config: Any
    retry: RetryPolicy
    timeout: float | None
    on_success: tuple[Hook, ...]
    on_failure: tuple[Hook, ...]
    depends_on: list[str]
    cpu: float = 1.0
    memory: int | None = None
    task: Task[Any] | None = None
    pool: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """What calling a task produced. Picklable, so it can come back from another process.

    ``error`` is the exception the task raised (or a ``ConveyorError`` such as
    ``TaskTimeoutError``); ``stored`` holds the pointer columns of a result
    that the worker already wrote to the result store.
    """

    value: Any = None
    error: BaseException | None = None
    traceback_text: str = ""
    out: str = ""
    err: str = ""
    stored: dict[str, Any] | None = None
    user_code: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class Outcome:
    """The end of one attempt: ``success`` (with ``value``), ``up_for_retry`` (after ``wait``)
    or ``failure`` (with ``error``)."""

    status: TaskStatus
    value: Any = None
    error: ConveyorError | None = None
    wait: float = 0.0
    stored: dict[str, Any] | None = field(default=None)


def injections(
    params: tuple[Param, ...],
    n_positional: int,
    given: set[str] | dict[str, Any],
    resource_keys: set[str] | dict[str, Any],
    *,
    job_body: bool = False,
) -> tuple[tuple[str, str], ...]:
    """Which parameters the runner fills, and from what (context, config, resource, field)."""
    out = []
    for i, p in enumerate(params):
        if p.variadic or i < n_positional or p.name in given:
            continue
        if p.kind is ParamKind.CONTEXT:
            out.append((p.name, CONTEXT))
        elif p.kind is ParamKind.CONFIG:
            out.append((p.name, CONFIG))
        elif p.name in resource_keys:
            out.append((p.name, RESOURCE))
        elif job_body:
            out.append((p.name, FIELD))
    return tuple(out)


def task_spec(
    state: RunState,
    task: Task[Any],
    key: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    depends_on: list[str],
    config: Any,
) -> StepSpec:
    """The step for one call of ``task`` in this run, with the task's or the job's options."""
    return StepSpec(
        key=key,
        name=task.name,
        fn=task.fn,
        is_async=task.is_async,
        args=args,
        kwargs=kwargs,
        inject=injections(task.params, len(args), kwargs, state.resources or state.job.resources),
        config=config,
        retry=task.retry or state.default_retry,
        timeout=task.timeout,
        # The job's task hooks (Dagster's job-level hooks=) run after the task's own.
        on_success=(*task.on_success, *getattr(state.job, "on_task_success", ())),
        on_failure=(*task.on_failure, *getattr(state.job, "on_task_failure", ())),
        depends_on=depends_on,
        cpu=task.cpu if task.cpu is not None else 1.0,
        memory=task.memory,
        task=task,
        pool=task.pool,
        env=step_env(state, task),
    )


def step_env(state: RunState, task: Task[Any]) -> dict[str, str]:
    """The environment variables of a step: the job's ``env_vars`` (when it has them),
    then the task's (or its call's), which win."""
    job_env: dict[str, str] = getattr(state.job, "env_vars", None) or {}
    return {**job_env, **task.env_vars} if job_env else dict(task.env_vars)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` in this process's environment, restoring what was there after.

    The environment belongs to the whole process: threads running at the same
    time (the in-process executor's parallel steps) see these values too.
    """
    if not env:
        yield
        return
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def make_context(
    meta: RunMeta, key: str, attempt: int, config: Any, resources: dict[str, Any]
) -> TaskContext:
    return TaskContext(
        task_key=key,
        attempt=attempt,
        run_id=meta.run_id,
        job_name=meta.job_name,
        tags=meta.tags,
        config=config,
        resources=resources,
        log_factory=make_logger,
        interval=meta.interval,
        refresh=meta.refresh,
        partition=meta.partition,
        partition_window=meta.partition_window,
        partition_keys=meta.partition_keys,
    )


def begin(state: RunState, spec: StepSpec, attempt: int) -> None:
    """Record that an attempt starts."""
    state.recorder.task(
        spec.key,
        attempt,
        TaskStatus.RUNNING,
        task_name=spec.name,
        depends_on=spec.depends_on,
        started_at=time.time(),
        cpu=spec.cpu,
        memory=spec.memory,
    )
    state.set_status(spec.key, TaskStatus.RUNNING)


def call_task(
    spec: StepSpec,
    attempt: int,
    meta: RunMeta,
    resources: dict[str, Any],
    *,
    echo: bool,
) -> Report:
    """Call the task's function with its parameters filled, capturing what it writes.

    Raises only ``BaseException``s that stop the run (Ctrl-C); everything the
    task raises, and its timeout, come back in the report.
    """
    kwargs = spec.kwargs
    if spec.inject:
        ctx = None
        kwargs = dict(kwargs)
        for name, how in spec.inject:
            if how == CONTEXT:
                ctx = ctx or make_context(meta, spec.key, attempt, spec.config, resources)
                kwargs[name] = ctx
            elif how == CONFIG:
                kwargs[name] = raw_config_value(spec.config)
            elif how == RESOURCE:
                kwargs[name] = resources[name]
            else:
                kwargs[name] = getattr(spec.config, name)
    cap = Capture(
        echo,
        meta.log_dir,
        (meta.run_id, spec.key, attempt),
        redactor_of(meta.redact) if meta.redact else None,
    )
    token = current_capture.set(cap)
    report = Report()
    started = time.monotonic()
    try:
        with environment(spec.env):
            value = spec.fn(*spec.args, **kwargs)
            if spec.is_async:
                value = run_coroutine(_within(value, spec.timeout))
        if spec.timeout is not None and time.monotonic() - started > spec.timeout:
            report.error = TaskTimeoutError(
                f"task {spec.key!r} ran past its timeout of {spec.timeout:g}s; a step running "
                f"in the run's process is not interrupted, so it failed when it returned "
                f"(the multiprocess executor stops a step at its timeout)"
            )
            report.user_code = False
        else:
            report.value = value
    except _Cancelled:
        report.error = TaskTimeoutError(
            f"task {spec.key!r} ran past its timeout of {spec.timeout:g}s and was cancelled "
            f"at an await"
        )
        report.user_code = False
    except Exception as e:
        report.error = e
    except BaseException:
        # Ctrl-C: the run's process stores what the task wrote as it stops it (``cancel``).
        cap.close(keep=True)
        raise
    finally:
        current_capture.reset(token)
    if report.error is not None:
        # As a process would, the failed attempt's stderr ends with its traceback.
        report.traceback_text = UserCodeError.format(report.error)
        cap.write("stderr", report.traceback_text)
    cap.close()
    report.out = cap.text("stdout")
    report.err = cap.text("stderr")
    return report


class _Cancelled(Exception):
    """An ``async`` task was cancelled at its timeout."""


async def _within(coro: Coroutine[Any, Any, Any], seconds: float | None) -> Any:
    """Await ``coro``, cancelling it (at an ``await``) after ``seconds``."""
    if seconds is None:
        return await coro
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            return await coro
    except TimeoutError:
        if limit.expired():
            raise _Cancelled() from None
        raise


def finish(
    state: RunState, spec: StepSpec, attempt: int, report: Report, ctx: TaskContext | None = None
) -> Outcome:
    """Store an attempt's logs and result, record its end, run hooks, decide on a retry."""
    rec = state.recorder
    key = spec.key
    _store_logs(state, key, attempt, report)
    if report.error is None:
        report = _store_result(state, key, report)
    if report.error is None:
        rec.task(key, attempt, TaskStatus.SUCCESS, ended_at=time.time())
        state.set_status(key, TaskStatus.SUCCESS)
        for hook in spec.on_success:
            _call_hook(state, hook, spec, attempt, ctx, None)
        return Outcome(TaskStatus.SUCCESS, value=report.value, stored=report.stored)
    error = report.error
    wrapped: ConveyorError
    if report.user_code:
        wrapped = UserCodeError(f"task {key!r}", error, report.traceback_text)
    else:
        wrapped = (
            error
            if isinstance(error, ConveyorError)
            else UserCodeError(f"task {key!r}", error, report.traceback_text)
        )
    fields: dict[str, Any] = {
        "ended_at": time.time(),
        "error_type": f"{type(error).__module__}.{type(error).__qualname__}"[:255],
        "error_message": str(error),
        "error_traceback": report.traceback_text or None,
    }
    if spec.retry.should_retry(error, attempt):
        wait = spec.retry.wait_before(attempt)
        rec.task(key, attempt, TaskStatus.UP_FOR_RETRY, retry_wait=wait, **fields)
        rec.event(
            "retry",
            f"task {key!r} failed on attempt {attempt} with "
            f"{type(error).__name__}: {error}; retrying in {wait:g}s",
            task_key=key,
            attempt=attempt,
            data={"wait": wait},
        )
        state.set_status(key, TaskStatus.UP_FOR_RETRY)
        return Outcome(TaskStatus.UP_FOR_RETRY, error=wrapped, wait=wait)
    rec.task(key, attempt, TaskStatus.FAILURE, **fields)
    rec.event(
        "task_failure",
        f"task {key!r} failed: {type(error).__name__}: {error}",
        task_key=key,
        attempt=attempt,
        data={"traceback": report.traceback_text},
    )
    state.set_status(key, TaskStatus.FAILURE)
    for hook in spec.on_failure:
        _call_hook(state, hook, spec, attempt, ctx, error)
    return Outcome(TaskStatus.FAILURE, error=wrapped)


def cancel(state: RunState, spec: StepSpec, attempt: int, reason: str) -> None:
    """Record that a running attempt was stopped because the run is being stopped, with
    what it wrote until then."""
    _store_logs(state, spec.key, attempt, Report(), stopped=True)
    state.recorder.task(
        spec.key, attempt, TaskStatus.CANCELED, ended_at=time.time(), error_message=reason
    )
    state.set_status(spec.key, TaskStatus.CANCELED)


def original(error: ConveyorError) -> BaseException:
    """The exception to raise for a failure: the user's own where user code raised."""
    return error.original if isinstance(error, UserCodeError) else error


def _store_logs(
    state: RunState, key: str, attempt: int, report: Report, *, stopped: bool = False
) -> None:
    """Store the attempt's output; output that cannot be written is reported, not fatal.

    An attempt that was stopped (its process killed, or abandoned) reports no
    output: what it wrote until then is in its capture here or its live file.
    """
    for stream, text in (("stdout", report.out), ("stderr", report.err)):
        if not text and (stopped or report.error is not None):
            live = state.instance.log_store.live_dir(state.run_id)
            text = written(state.run_id, key, attempt, stream, live)
        if not text:
            continue
        try:
            state.recorder.log(key, attempt, stream, text.encode("utf-8", "replace"))
        except StorageError as e:
            state.recorder.event("log_not_stored", str(e), task_key=key, attempt=attempt)
            log.warning("the %s of task %r (attempt %d) is lost: %s", stream, key, attempt, e)


def _store_result(state: RunState, key: str, report: Report) -> Report:
    """Store a succeeded attempt's output; the report of a failure where it cannot be written."""
    if report.stored is not None:
        state.recorder.stored_result(key, report.stored)
        return report
    try:
        state.recorder.result(key, report.value)
    except StorageError as e:
        # The disk refused the bytes (full, read-only), or the value cannot be
        # pickled: the attempt failed, like any other, so that nothing
        # downstream, nor a later `.result()` or rerun, counts on a result that
        # is not there. The same holds on every executor.
        if isinstance(e.__cause__, OSError) or e.__cause__ is None:
            return stored_failure(report, e)
        return stored_failure(report, unpicklable_result(key, report.value, e.__cause__))
    return report


def unpicklable_result(key: str, value: object, error: BaseException) -> ExecutionError:
    """The error of a task whose output cannot be pickled, so cannot be stored."""
    t = type(value)
    return ExecutionError(
        f"task {key!r} returned a {t.__module__}.{t.__qualname__}, which cannot be pickled "
        f"({type(error).__name__}: {error}), so its result cannot be stored or passed on: "
        f"return a value that pickles (plain data, a dataclass, a DataFrame...), or return "
        f"None and keep the object inside the task"
    )


def stored_failure(report: Report, error: ConveyorError) -> Report:
    """The report of an attempt whose output could not be written to the result store."""
    return Report(
        error=error,
        traceback_text=UserCodeError.format(error),
        out=report.out,
        err=report.err,
        user_code=False,
    )


def _call_hook(
    state: RunState,
    hook: Hook,
    spec: StepSpec,
    attempt: int,
    ctx: TaskContext | None,
    error: BaseException | None,
) -> None:
    """Run a hook; a hook that raises is recorded and does not change the outcome."""
    name = getattr(hook, "__name__", repr(hook))
    try:
        if error is None or _arity(hook) < 2:
            hook(ctx)
        else:
            hook(ctx, error)
    except Exception as e:
        err = UserCodeError(f"hook {name!r} of task {spec.key!r}", e)
        state.recorder.event(
            "hook_error",
            str(err),
            task_key=spec.key,
            attempt=attempt,
            data={"traceback": err.traceback_text},
        )
        log.warning("%s", err)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 2
    return sum(
        1
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )
