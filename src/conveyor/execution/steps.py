"""Running one step: an attempt with its capture, timeout, hooks and records.

The static engine and the ``@job`` frame both describe a step as a
``StepSpec`` and run its attempts here, so retries, timeouts, logs, results
and hooks behave the same wherever a task runs.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.context import TaskContext
from conveyor.definitions.params import Param, ParamKind
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.task import Hook, Task
from conveyor.errors import StorageError, TaskTimeoutError, UserCodeError
from conveyor.execution.aio import run_coroutine
from conveyor.execution.capture import Capture, current_capture, make_logger
from conveyor.execution.state import RunState
from conveyor.execution.timeouts import TaskInterrupt, deadline
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


@dataclass(slots=True)
class Outcome:
    """The end of one attempt: ``success`` (with ``value``), ``retry`` (after ``wait``) or
    ``failure`` (with ``error``)."""

    status: TaskStatus
    value: Any = None
    error: UserCodeError | None = None
    wait: float = 0.0


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
        inject=injections(task.params, len(args), kwargs, state.resources),
        config=config,
        retry=task.retry or state.default_retry,
        timeout=task.timeout,
        on_success=task.on_success,
        on_failure=task.on_failure,
        depends_on=depends_on,
    )


def _context(state: RunState, spec: StepSpec, attempt: int) -> TaskContext:
    return TaskContext(
        task_key=spec.key,
        attempt=attempt,
        run_id=state.run_id,
        job_name=state.job.name,
        tags=state.tags,
        config=spec.config,
        resources=state.resources,
        log_factory=make_logger,
    )


def run_attempt(state: RunState, spec: StepSpec, attempt: int) -> Outcome:
    """Run attempt ``attempt`` of a step and record it from ``running`` to its end."""
    rec = state.recorder
    key = spec.key
    rec.task(
        key,
        attempt,
        TaskStatus.RUNNING,
        task_name=spec.name,
        depends_on=spec.depends_on,
        started_at=time.time(),
    )
    state.set_status(key, TaskStatus.RUNNING)
    ctx = (
        _context(state, spec, attempt)
        if (spec.inject or spec.on_success or spec.on_failure)
        else None
    )
    kwargs = spec.kwargs
    if spec.inject:
        kwargs = dict(kwargs)
        for name, how in spec.inject:
            if how == CONTEXT:
                kwargs[name] = ctx
            elif how == CONFIG:
                kwargs[name] = spec.config
            elif how == RESOURCE:
                kwargs[name] = state.resources[name]
            else:
                kwargs[name] = getattr(spec.config, name)
    cap = Capture(state.echo)
    token = current_capture.set(cap)
    error: BaseException | None = None
    value: Any = None
    try:
        try:
            with deadline(spec.timeout):
                value = spec.fn(*spec.args, **kwargs)
                if spec.is_async:
                    value = run_coroutine(value)
        except TaskInterrupt:
            error = TaskTimeoutError(
                f"task {key!r} ran past its timeout of {spec.timeout:g}s and was stopped"
            )
        except Exception as e:
            error = e
    except BaseException:
        # KeyboardInterrupt or SystemExit: the run is being stopped.
        current_capture.reset(token)
        _store_logs(state, key, attempt, cap)
        rec.task(key, attempt, TaskStatus.CANCELED, ended_at=time.time())
        state.set_status(key, TaskStatus.CANCELED)
        raise
    current_capture.reset(token)
    if error is not None:
        # As a process would, the failed attempt's stderr ends with its traceback.
        cap.err.append(UserCodeError.format(error))
    _store_logs(state, key, attempt, cap)
    if error is None:
        _store_result(state, key, value)
        rec.task(key, attempt, TaskStatus.SUCCESS, ended_at=time.time())
        state.set_status(key, TaskStatus.SUCCESS)
        for hook in spec.on_success:
            _call_hook(state, hook, spec, attempt, ctx, None)
        return Outcome(TaskStatus.SUCCESS, value=value)
    wrapped = UserCodeError(f"task {key!r}", error, cap.err[-1])
    fields: dict[str, Any] = {
        "ended_at": time.time(),
        "error_type": f"{type(error).__module__}.{type(error).__qualname__}"[:255],
        "error_message": str(error),
        "error_traceback": wrapped.traceback_text,
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
        data={"traceback": wrapped.traceback_text},
    )
    state.set_status(key, TaskStatus.FAILURE)
    for hook in spec.on_failure:
        _call_hook(state, hook, spec, attempt, ctx, error)
    return Outcome(TaskStatus.FAILURE, error=wrapped)


def run_with_retries(state: RunState, spec: StepSpec) -> Outcome:
    """Run a step's attempts in this thread, sleeping between them, until it ends."""
    attempt = 1
    while True:
        outcome = run_attempt(state, spec, attempt)
        if outcome.status is not TaskStatus.UP_FOR_RETRY:
            return outcome
        time.sleep(outcome.wait)
        attempt += 1


def _store_logs(state: RunState, key: str, attempt: int, cap: Capture) -> None:
    for stream, parts in (("stdout", cap.out), ("stderr", cap.err)):
        if parts:
            state.recorder.log(key, attempt, stream, cap.data(stream))


def _store_result(state: RunState, key: str, value: Any) -> None:
    try:
        state.recorder.result(key, value)
    except StorageError as e:
        # The value still flows to downstream tasks in this run; only reuse
        # by a later rerun is lost, and that rerun executes the task again.
        state.recorder.event("result_not_stored", str(e), task_key=key)


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
