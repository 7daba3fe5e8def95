"""The scheduling loop of executors that run steps elsewhere (processes, a Dask cluster).

The run's process keeps the plan and the records; a ``Backend`` only starts
calls, reports their ends, and stops calls on request. Steps start as soon
as their dependencies are done and the cpu budget allows, in plan order;
a retry waits without blocking others; a step past its timeout, or over its
memory, is stopped by the backend; a cancel request stops everything.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from conveyor.definitions.retry import NO_RETRY
from conveyor.errors import ConveyorError, InsufficientResourcesError, TaskTimeoutError
from conveyor.execution import slots
from conveyor.execution.executors.base import Frontier, StoredValue, resolve_args
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunMeta, RunState
from conveyor.execution.steps import (
    Report,
    StepSpec,
    begin,
    cancel,
    finish,
    task_spec,
)
from conveyor.execution.timeouts import RunCanceled
from conveyor.storage.states import TaskStatus

# The longest the loop waits before looking at deadlines, memory and cancels again.
TICK = 0.1


@dataclass(slots=True)
class Running:
    key: str
    attempt: int
    spec: StepSpec
    deadline: float | None


class Backend(Protocol):
    """Where a concurrent executor's calls run."""

    cpu_budget: float
    # Seconds past a task's timeout before the loop stops it from outside: 0 where
    # the backend kills the task's process, more where the worker stops it itself.
    stop_grace: float
    # How a stopped call was stopped, for error messages.
    stop_note: str

    def refuse(self, spec: StepSpec) -> str | None:
        """Why a step can never run here (it asks for more than any worker has), if so."""
        ...

    def has_room(self) -> bool:
        """Whether another call can start now (a worker is free)."""
        ...

    def submit(self, spec: StepSpec, attempt: int, meta: RunMeta) -> object:
        """Start a call; the returned handle identifies it in ``wait``."""
        ...

    def wait(self, timeout: float, running: dict[object, Running]) -> list[tuple[object, Report]]:
        """Calls that ended within ``timeout`` seconds, with their reports.

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


def run_concurrently(state: RunState, plan: Plan, backend: Backend) -> None:
    """Execute the plan on ``backend``; results land in ``state.outputs``."""
    values: dict[str, Any] = {**plan.inputs, **state.outputs}
    frontier = Frontier(state, plan)
    retries: deque[tuple[str, int]] = deque()
    delayed: list[tuple[float, int, str, int]] = []
    specs: dict[str, StepSpec] = {}
    running: dict[object, Running] = {}
    meta = state.meta
    used = 0.0
    seq = 0
    stopping: set[object] = set()
    # Steps waiting for a slot of their pool, oldest first, with their attempt.
    parked: list[tuple[StepSpec, int]] = []

    def next_step() -> tuple[str, int] | None:
        if retries:
            return retries[0]
        if frontier.ready:
            return frontier.ready[0], 1
        return None

    while frontier.ready or delayed or running or retries or parked:
        if state.cancel_requested.is_set():
            for handle, item in running.items():
                backend.stop(handle, ConveyorError("the run was canceled"))
                cancel(state, item.spec, item.attempt, "stopped: the run was canceled")
            raise RunCanceled()
        now = time.monotonic()
        while delayed and delayed[0][0] <= now:
            _, _, key, attempt = heapq.heappop(delayed)
            retries.append((key, attempt))
        if parked:
            retries.extendleft(reversed(slots.unpark(state, parked)))
        while (step := next_step()) is not None and backend.has_room():
            key, attempt = step
            spec = specs.get(key)
            if spec is None:
                node = plan.steps[key]
                args, kwargs = resolve_args(node, values, backend.load)
                spec = task_spec(
                    state,
                    node.task,
                    key,
                    args,
                    kwargs,
                    list(node.deps),
                    state.config.task_configs.get(key),
                )
                specs[key] = spec
            reason = backend.refuse(spec)
            if reason is not None:
                _pop(retries, frontier.ready, attempt)
                _refuse(state, spec, attempt, reason, frontier)
                continue
            if running and used + spec.cpu > backend.cpu_budget:
                break
            _pop(retries, frontier.ready, attempt)
            if not slots.try_take(state, spec):
                parked.append((spec, attempt))
                continue
            begin(state, spec, attempt)
            handle = backend.submit(spec, attempt, meta)
            deadline = (
                None
                if spec.timeout is None
                else time.monotonic() + spec.timeout + backend.stop_grace
            )
            running[handle] = Running(key, attempt, spec, deadline)
            used += spec.cpu
        if not running:
            if (delayed or parked) and not retries and not frontier.ready:
                pause = TICK if not delayed else min(delayed[0][0] - time.monotonic(), TICK)
                time.sleep(max(0.0, pause))
            continue
        wait = TICK
        deadlines = [r.deadline for r in running.values() if r.deadline is not None]
        if deadlines:
            wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
        if delayed:
            wait = min(wait, max(0.0, delayed[0][0] - time.monotonic()))
        for handle, report in backend.wait(wait, running):
            item = running.pop(handle)
            stopping.discard(handle)
            used -= item.spec.cpu
            slots.give_back(state, item.spec)
            outcome = finish(state, item.spec, item.attempt, report)
            key = item.key
            if outcome.status is TaskStatus.SUCCESS:
                specs.pop(key, None)
                value = StoredValue(outcome.stored) if outcome.stored is not None else outcome.value
                values[key] = state.outputs[key] = value
                frontier.release(key)
            elif outcome.status is TaskStatus.UP_FOR_RETRY:
                seq += 1
                heapq.heappush(
                    delayed, (time.monotonic() + outcome.wait, seq, key, item.attempt + 1)
                )
            else:
                specs.pop(key, None)
                assert outcome.error is not None
                state.failures[key] = outcome.error
                frontier.skip_downstream(key)
        now = time.monotonic()
        for handle, item in running.items():
            if item.deadline is not None and now >= item.deadline and handle not in stopping:
                stopping.add(handle)
                backend.stop(
                    handle,
                    TaskTimeoutError(
                        f"task {item.key!r} ran past its timeout of {item.spec.timeout:g}s and "
                        f"{backend.stop_note}"
                    ),
                )


def _pop(retries: deque[tuple[str, int]], ready: deque[str], attempt: int) -> None:
    if retries and retries[0][1] == attempt:
        retries.popleft()
    else:
        ready.popleft()


def _refuse(state: RunState, spec: StepSpec, attempt: int, reason: str, frontier: Frontier) -> None:
    """Fail a step that asks for more than the executor can ever give, at once."""
    begin(state, spec, attempt)
    error = InsufficientResourcesError(reason)
    outcome = finish(
        state,
        dataclasses.replace(spec, retry=NO_RETRY),
        attempt,
        Report(error=error, user_code=False),
    )
    assert outcome.error is not None
    state.failures[spec.key] = outcome.error
    frontier.skip_downstream(spec.key)
