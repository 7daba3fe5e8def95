"""The frame of a running ``@job`` body: task calls become recorded steps.

A plain call runs the step in the body's thread and returns its value (or
raises its error); ``submit`` runs it on a thread pool and returns a
``StepFuture``; ``map`` submits one step per item. Futures passed as
arguments are waited for and become the step's recorded dependencies.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from conveyor.definitions.frames import current_frame
from conveyor.definitions.graph import iter_refs, replace_leaves
from conveyor.definitions.retry import NO_RETRY
from conveyor.definitions.task import Task
from conveyor.definitions.workflow import KeyCounter
from conveyor.execution.state import RunState
from conveyor.execution.steps import (
    StepSpec,
    injections,
    original,
    run_attempt,
    run_with_retries,
    task_spec,
)
from conveyor.storage.states import TaskStatus

MAX_THREADS = 16


class StepFuture:
    """The eventual value of a submitted step; pass it to other task calls as an argument."""

    __slots__ = ("_future", "key")

    def __init__(self, key: str, future: Future[Any]) -> None:
        self.key = key
        self._future = future

    def result(self, timeout: float | None = None) -> Any:
        """The step's value, waiting for it; raises the step's own error if it failed."""
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        return f"<StepFuture {self.key} {'done' if self.done() else 'pending'}>"


class MappedFutures(list[StepFuture]):
    """The futures of a ``task.map(...)``; ``.result()`` gives all values in order."""

    def result(self, timeout: float | None = None) -> list[Any]:
        return [f.result(timeout) for f in self]


class JobFrame:
    """Routes task calls made while a ``@job`` body runs."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._used: set[str] = {state.job.name}
        self._keys = KeyCounter()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[Any]] = []

    def _key(self, name: str) -> str:
        with self._lock:
            key = self._keys.next(name, self._used)
            self._used.add(key)
            return key

    def _spec(
        self, task: Task[Any], key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepSpec:
        deps: list[str] = []
        if any(isinstance(x, StepFuture) for x in iter_refs((args, kwargs))):

            def value_of(leaf: Any) -> Any:
                if isinstance(leaf, StepFuture):
                    if leaf.key not in deps:
                        deps.append(leaf.key)
                    return leaf.result()
                return leaf

            args = replace_leaves(args, value_of)
            kwargs = replace_leaves(kwargs, value_of)
        state = self.state
        return task_spec(state, task, key, args, kwargs, deps, state.config.task_config(key, task))

    def _run(self, task: Task[Any], key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        state = self.state
        pointer = state.reuse.get(key)
        if pointer is not None:
            return self._reuse(key, task, pointer)
        outcome = run_with_retries(state, self._spec(task, key, args, kwargs))
        if outcome.status is TaskStatus.SUCCESS:
            with state.lock:
                state.outputs[key] = outcome.value
            return outcome.value
        assert outcome.error is not None
        with state.lock:
            state.failures[key] = outcome.error
        raise original(outcome.error)

    def _reuse(self, key: str, task: Task[Any], pointer: dict[str, Any]) -> Any:
        state = self.state
        value = state.instance.result_store.load(pointer)
        state.recorder.task(key, 1, TaskStatus.REUSED, task_name=task.name, ended_at=time.time())
        state.recorder.reuse_result(key, pointer)
        state.set_status(key, TaskStatus.REUSED)
        with state.lock:
            state.outputs[key] = value
        return value

    # -- the CallFrame protocol ---------------------------------------------------------------

    def call(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._run(task, self._key(task.name), args, kwargs)

    def submit(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepFuture:
        return self._submit(task, self._key(task.name), args, kwargs)

    def map(self, task: Task[Any], items: Iterable[Any], kwargs: dict[str, Any]) -> MappedFutures:
        base = self._key(task.name)
        return MappedFutures(
            self._submit(task, f"{base}[{i}]", (item,), dict(kwargs))
            for i, item in enumerate(items)
        )

    def _submit(
        self, task: Task[Any], key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFuture:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="conveyor-step")
            ctx = contextvars.copy_context()
            fut = self._pool.submit(ctx.run, self._run, task, key, args, kwargs)
            self._futures.append(fut)
        return StepFuture(key, fut)

    def close(self) -> None:
        """Wait for the steps the body submitted and did not wait for."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def run_body(state: RunState) -> None:
    """Run a ``@job`` body as the run's first step, with task calls routed through a frame."""
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
