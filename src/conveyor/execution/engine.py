"""The one engine: the loop that runs a run's steps, whatever way the job was written.

A ``@workflow``'s plan and the task calls of a running ``@job`` body feed the
same frontier, and every step goes through the same begin, pool slot, call,
timeout, retry and finish, on the executor's ``Backend``. A backend only
starts calls, reports their ends, and stops calls on request; the run's
thread keeps the frontier and the records.

A ``@job`` body runs in a thread of its own; its task calls reach the loop
through ``dynamic.JobFrame`` and wait on futures that the loop resolves.
Stops are cooperative here: a cancel request is seen between steps, and a
step past its timeout is stopped only by a backend that can (a process
executor kills the step's process tree).
"""

from __future__ import annotations

import contextvars
import dataclasses
import heapq
import inspect
import select
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.definitions.frames import current_frame
from conveyor.definitions.graph import replace_leaves
from conveyor.definitions.retry import NO_RETRY
from conveyor.definitions.task import Task
from conveyor.errors import (
    ConveyorError,
    ExecutionError,
    InsufficientResourcesError,
    TaskTimeoutError,
)
from conveyor.execution import slots
from conveyor.execution.executors.base import Frontier, StoredValue, resolve_args
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunMeta, RunState
from conveyor.execution.steps import (
    Report,
    StepSpec,
    begin,
    call_task,
    cancel,
    finish,
    injections,
    make_context,
    original,
    task_spec,
)
from conveyor.execution.timeouts import RunCanceled
from conveyor.storage.states import TaskStatus

if TYPE_CHECKING:
    from conveyor.execution.dynamic import JobFrame

# The longest the loop waits before looking at deadlines, memory and cancels again.
TICK = 0.1
# How often steps that are ready ask again for a worker that other runs hold.
ROOM_POLL = 0.01
# How often steps parked for a slot of their pool ask again (one query per pool).
POOL_POLL = 0.1


@dataclass(slots=True)
class Running:
    key: str
    attempt: int
    spec: StepSpec
    deadline: float | None


@dataclass(slots=True)
class Call:
    """A task call made by a running ``@job`` body, waiting to become a step."""

    key: str
    task: Task[Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    deps: list[str]
    future: Future[Any]


class Wakeup:
    """Wakes the loop from a backend's wait: a socket pair, so that a backend can wait
    on it together with its own pipes (``multiprocessing.connection.wait`` takes it)."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def poke(self) -> None:
        try:
            self._writer.send(b"x")
        except OSError:
            pass  # the buffer is full (a wake-up is pending anyway) or the loop ended

    def drain(self) -> None:
        try:
            while self._reader.recv(4096):
                pass
        except OSError:
            pass

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less if poked."""
        if timeout > 0:
            select.select([self._reader], [], [], timeout)
        self.drain()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Backend(Protocol):
    """Where an executor's calls run."""

    cpu_budget: float
    # Seconds past a task's timeout before the loop stops it from outside.
    stop_grace: float
    # How a stopped call was stopped, for error messages.
    stop_note: str

    def refuse(self, spec: StepSpec) -> str | None:
        """Why a step can never run here (it asks for more than any worker has), if so."""
        ...

    def has_room(self) -> bool:
        """Whether another call can start now (a worker is free, and now held for it)."""
        ...

    def submit(self, spec: StepSpec, attempt: int, meta: RunMeta) -> object:
        """Start a call; the returned handle identifies it in ``wait``."""
        ...

    def wait(
        self, timeout: float, running: dict[object, Running], wake: Wakeup
    ) -> list[tuple[object, Report]]:
        """Calls that ended within ``timeout`` seconds (sooner if ``wake`` is poked).

        The backend also stops calls over their memory here, and reports
        calls whose worker died.
        """
        ...

    def stop(self, handle: object, error: ConveyorError) -> None:
        """Stop a call; its report, carrying ``error``, comes back from ``wait``."""
        ...

    def load(self, value: StoredValue) -> Any:
        """The value a worker stored."""
        ...

    def close(self) -> None:
        """The run is over: give back what it holds (workers)."""
        ...


class Engine:
    """Runs one run's steps on one backend: a plan's, a job body's, or both."""

    def __init__(self, state: RunState, plan: Plan | None, backend: Backend) -> None:
        self.state = state
        self.plan = plan
        self.backend = backend
        self.values: dict[str, Any] = {**(plan.inputs if plan else {}), **state.outputs}
        self.frontier = Frontier(state, plan)
        self.retries: deque[tuple[str, int]] = deque()
        self.delayed: list[tuple[float, int, str, int]] = []
        self.specs: dict[str, StepSpec] = {}
        self.running: dict[object, Running] = {}
        self.stopping: set[object] = set()
        # Steps waiting for a slot of their pool, oldest first, with their attempt.
        self.parked: list[tuple[StepSpec, int]] = []
        self.used = 0.0
        self.seq = 0
        self.next_unpark = 0.0
        self.wake = Wakeup()
        # A @job body's calls: arriving (from its thread), and known by key.
        self.inbox: deque[Call | Report | BaseException] = deque()
        self.calls: dict[str, Call] = {}
        self.body: StepSpec | None = None
        self.frame: JobFrame | None = None

    # -- a @job body ----------------------------------------------------------------------------

    def post(self, item: Call | Report | BaseException) -> None:
        """From the body's thread: a task call, or the body's end."""
        self.inbox.append(item)
        self.wake.poke()

    def _start_body(self) -> None:
        from conveyor.execution.dynamic import JobFrame

        state = self.state
        job = state.job
        frame = self.frame = JobFrame(state, self)
        is_async = inspect.iscoroutinefunction(job.fn)

        async def async_body(*args: Any, **kwargs: Any) -> Any:
            token = current_frame.set(frame)
            try:
                return await job.fn(*args, **kwargs)
            finally:
                current_frame.reset(token)

        def plain_body(*args: Any, **kwargs: Any) -> Any:
            token = current_frame.set(frame)
            try:
                return job.fn(*args, **kwargs)
            finally:
                current_frame.reset(token)

        spec = self.body = StepSpec(
            key=job.name,
            name=job.name,
            fn=async_body if is_async else plain_body,
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
        begin(state, spec, 1)
        ctx = contextvars.copy_context()

        def main() -> None:
            try:
                report = ctx.run(call_task, spec, 1, state.meta, state.resources, echo=state.echo)
            except BaseException as stop:  # handed to the run's thread
                self.post(stop)
                return
            self.post(report)

        threading.Thread(target=main, name=f"conveyor-body-{state.run_id[:8]}", daemon=True).start()

    def _take_inbox(self) -> None:
        while self.inbox:
            item = self.inbox.popleft()
            if isinstance(item, Call):
                self._add_call(item)
            elif isinstance(item, Report):
                self._end_body(item)
            else:
                assert self.body is not None
                cancel(self.state, self.body, 1, "stopped with the run")
                self.body = None
                raise item

    def _add_call(self, call: Call) -> None:
        state = self.state
        pointer = state.reuse.get(call.key)
        if pointer is not None:
            value = state.instance.result_store.load(pointer)
            state.recorder.task(
                call.key, 1, TaskStatus.REUSED, task_name=call.task.name, ended_at=time.time()
            )
            state.recorder.reuse_result(call.key, pointer)
            state.set_status(call.key, TaskStatus.REUSED)
            self.values[call.key] = state.outputs[call.key] = value
            call.future.set_result(value)
            return
        self.calls[call.key] = call
        failed = self.frontier.add(call.key, call.deps)
        if failed is not None:
            self._skip_call(call, failed, record=True)
        elif self.frontier.waiting[call.key]:
            state.recorder.task(
                call.key, 1, TaskStatus.PENDING, task_name=call.task.name, depends_on=call.deps
            )
            state.statuses[call.key] = TaskStatus.PENDING
        else:
            # Listed now, in the order the body called it (its row comes when it runs), so
            # a call made first is not listed after a later one that waits for it.
            state.statuses.setdefault(call.key, TaskStatus.PENDING)

    def _skip_call(self, call: Call, failed: str, *, record: bool) -> None:
        if record:
            self.state.recorder.task(
                call.key,
                1,
                TaskStatus.SKIPPED,
                task_name=call.task.name,
                depends_on=call.deps,
                ended_at=time.time(),
                error_message=f"not run: upstream task {failed!r} failed",
            )
            self.state.set_status(call.key, TaskStatus.SKIPPED)
        error = self.state.failures.get(failed)
        call.future.set_exception(
            original(error)
            if error is not None
            else ExecutionError(f"task {call.key!r} was not run: upstream task {failed!r} failed")
        )
        del self.calls[call.key]

    def _end_body(self, report: Report) -> None:
        state, spec = self.state, self.body
        assert spec is not None
        self.body = None
        outcome = finish(state, spec, 1, report)
        if outcome.status is TaskStatus.SUCCESS:
            state.outputs[spec.key] = outcome.value
        else:
            assert outcome.error is not None
            state.failures.setdefault(spec.key, outcome.error)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, *, body: bool) -> None:
        try:
            if body:
                self._start_body()
            self._loop()
        except BaseException as stop:
            canceled = isinstance(stop, RunCanceled)
            self._stop_all("stopped: the run was canceled" if canceled else "stopped with the run")
            raise
        finally:
            if self.frame is not None:
                self.frame.close()
            self.backend.close()
            self.wake.close()

    def _busy(self) -> bool:
        return bool(
            self.body is not None
            or self.inbox
            or self.frontier.ready
            or self.delayed
            or self.running
            or self.retries
            or self.parked
        )

    def _stop_all(self, reason: str) -> None:
        for handle, item in list(self.running.items()):
            self.backend.stop(handle, ConveyorError(reason))
            cancel(self.state, item.spec, item.attempt, reason)
            slots.give_back(self.state, item.spec)
        self.running.clear()
        if self.body is not None:
            cancel(self.state, self.body, 1, reason)
            self.body = None

    def _next_step(self) -> tuple[str, int] | None:
        if self.retries:
            return self.retries[0]
        if self.frontier.ready:
            return self.frontier.ready[0], 1
        return None

    def _pop(self, attempt: int) -> None:
        if self.retries and self.retries[0][1] == attempt:
            self.retries.popleft()
        else:
            self.frontier.ready.popleft()

    def _spec(self, key: str) -> StepSpec:
        spec = self.specs.get(key)
        if spec is not None:
            return spec
        state = self.state
        call = self.calls.get(key)
        if call is None:
            assert self.plan is not None
            node = self.plan.steps[key]
            args, kwargs = resolve_args(node, self.values, self.backend.load)
            spec = task_spec(
                state,
                node.task,
                key,
                args,
                kwargs,
                list(node.deps),
                state.config.task_configs.get(key),
            )
        else:
            args, kwargs = call.args, call.kwargs
            if call.deps:
                from conveyor.execution.dynamic import StepFuture

                def value_of(leaf: Any) -> Any:
                    return self.values[leaf.key] if isinstance(leaf, StepFuture) else leaf

                args = replace_leaves(args, value_of)
                kwargs = replace_leaves(kwargs, value_of)
            config = state.config.task_config(key, call.task)
            spec = task_spec(state, call.task, key, args, kwargs, call.deps, config)
        self.specs[key] = spec
        return spec

    def _loop(self) -> None:
        state, backend, frontier = self.state, self.backend, self.frontier
        running, delayed, retries, parked = self.running, self.delayed, self.retries, self.parked
        meta = state.meta
        while self._busy():
            if state.cancel_requested.is_set():
                self._stop_all("stopped: the run was canceled")
                raise RunCanceled()
            if self.inbox:
                self._take_inbox()
            if delayed:
                now = time.monotonic()
                while delayed and delayed[0][0] <= now:
                    _, _, key, attempt = heapq.heappop(delayed)
                    retries.append((key, attempt))
            if parked and time.monotonic() >= self.next_unpark:
                # Asked again when a slot of ours came back, else at most every POOL_POLL.
                self.next_unpark = time.monotonic() + POOL_POLL
                retries.extendleft(reversed(slots.unpark(state, parked)))
            while (step := self._next_step()) is not None and backend.has_room():
                key, attempt = step
                spec = self._spec(key)
                reason = backend.refuse(spec)
                if reason is not None:
                    self._pop(attempt)
                    self._refuse(spec, attempt, reason)
                    continue
                if running and self.used + spec.cpu > backend.cpu_budget:
                    break
                self._pop(attempt)
                if not slots.try_take(state, spec):
                    parked.append((spec, attempt))
                    continue
                begin(state, spec, attempt)
                try:
                    handle = backend.submit(spec, attempt, meta)
                except BaseException:
                    # Ctrl-C or SystemExit from a task running in this thread.
                    cancel(state, spec, attempt, "stopped with the run")
                    slots.give_back(state, spec)
                    raise
                deadline = (
                    None
                    if spec.timeout is None
                    else time.monotonic() + spec.timeout + backend.stop_grace
                )
                running[handle] = Running(key, attempt, spec, deadline)
                self.used += spec.cpu
            if not running:
                if not self.inbox and self._busy():
                    # Waiting for a retry, a pool slot, the body's next call, or (steps
                    # ready) a worker that other runs hold.
                    pause = ROOM_POLL if frontier.ready or retries else TICK
                    if delayed:
                        pause = min(pause, delayed[0][0] - time.monotonic())
                    self.wake.wait(max(0.0, pause))
                continue
            wait = TICK
            deadlines = [r.deadline for r in running.values() if r.deadline is not None]
            if deadlines:
                wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
            if delayed:
                wait = min(wait, max(0.0, delayed[0][0] - time.monotonic()))
            for handle, report in backend.wait(wait, running, self.wake):
                self._ended(handle, report)
            if deadlines:
                self._stop_late()

    def _ended(self, handle: object, report: Report) -> None:
        state = self.state
        item = self.running.pop(handle)
        self.stopping.discard(handle)
        self.used -= item.spec.cpu
        spec = item.spec
        if slots.pool_of(state, spec) is not None:
            slots.give_back(state, spec)
            self.next_unpark = 0.0
        ctx = None
        if spec.on_success or spec.on_failure:
            ctx = make_context(state.meta, spec.key, item.attempt, spec.config, state.resources)
        outcome = finish(state, spec, item.attempt, report, ctx)
        key = item.key
        if outcome.status is TaskStatus.SUCCESS:
            self.specs.pop(key, None)
            value = StoredValue(outcome.stored) if outcome.stored is not None else outcome.value
            self.values[key] = state.outputs[key] = value
            self.frontier.release(key)
            call = self.calls.pop(key, None)
            if call is not None:
                call.future.set_result(value)
        elif outcome.status is TaskStatus.UP_FOR_RETRY:
            self.seq += 1
            heapq.heappush(
                self.delayed, (time.monotonic() + outcome.wait, self.seq, key, item.attempt + 1)
            )
        else:
            assert outcome.error is not None
            self._failed(key, outcome.error)

    def _failed(self, key: str, error: ConveyorError) -> None:
        self.specs.pop(key, None)
        self.state.failures[key] = error
        call = self.calls.pop(key, None)
        if call is not None:
            call.future.set_exception(original(error))
        for skipped in self.frontier.skip_downstream(key):
            waiting = self.calls.get(skipped)
            if waiting is not None:
                self._skip_call(waiting, key, record=False)

    def _stop_late(self) -> None:
        now = time.monotonic()
        for handle, item in list(self.running.items()):
            if item.deadline is not None and now >= item.deadline and handle not in self.stopping:
                self.stopping.add(handle)
                self.backend.stop(
                    handle,
                    TaskTimeoutError(
                        f"task {item.key!r} ran past its timeout of {item.spec.timeout:g}s and "
                        f"{self.backend.stop_note}"
                    ),
                )

    def _refuse(self, spec: StepSpec, attempt: int, reason: str) -> None:
        """Fail a step that asks for more than the executor can ever give, at once."""
        begin(self.state, spec, attempt)
        outcome = finish(
            self.state,
            dataclasses.replace(spec, retry=NO_RETRY),
            attempt,
            Report(error=InsufficientResourcesError(reason), user_code=False),
        )
        assert outcome.error is not None
        self._failed(spec.key, outcome.error)


def run_steps(state: RunState, plan: Plan | None, backend: Backend) -> None:
    """Run a run's steps on ``backend``: the plan's, or (``plan`` is None) the job body's.

    Results land in ``state.outputs``, errors in ``state.failures``.
    """
    Engine(state, plan, backend).run(body=plan is None)
