"""The in-process engine for workflow graphs: steps in dependency order, in this thread.

A task waiting to be retried does not block the others: ready tasks run
while it waits, and the engine sleeps only when nothing else can run.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from typing import Any

from conveyor.definitions.graph import Node, OutputRef, replace_leaves
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunState
from conveyor.execution.steps import StepSpec, run_attempt, task_spec
from conveyor.storage.states import TaskStatus


def _resolve(node: Node, values: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if not node.has_refs:
        return node.args, node.kwargs

    def value_of(leaf: Any) -> Any:
        if isinstance(leaf, OutputRef):
            v = values[leaf.key]
            for p in leaf.path:
                v = v[p]
            return v
        return leaf

    return replace_leaves(node.args, value_of), replace_leaves(node.kwargs, value_of)


def run_plan(state: RunState, plan: Plan) -> None:
    """Execute the plan's steps; results land in ``state.outputs``, errors in ``state.failures``."""
    values = {**plan.inputs, **state.outputs}
    down = plan.downstream()
    waiting = {k: len(d) for k, d in plan.deps.items()}
    ready: deque[str] = deque(k for k, n in waiting.items() if n == 0 and k not in state.outputs)
    delayed: list[tuple[float, int, str, int]] = []
    seq = 0
    specs: dict[str, StepSpec] = {}
    for key in list(waiting):
        if key in state.outputs:  # reused from an earlier run
            _release(key, down, waiting, ready, state)
    while ready or delayed:
        if delayed and (not ready or delayed[0][0] <= time.monotonic()):
            due, _, key, attempt = heapq.heappop(delayed)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        else:
            key, attempt = ready.popleft(), 1
        spec = specs.get(key)
        if spec is None:
            node = plan.steps[key]
            args, kwargs = _resolve(node, values)
            config = state.config.task_configs.get(key)
            spec = task_spec(state, node.task, key, args, kwargs, list(node.deps), config)
        outcome = run_attempt(state, spec, attempt)
        if outcome.status is TaskStatus.SUCCESS:
            specs.pop(key, None)
            values[key] = state.outputs[key] = outcome.value
            _release(key, down, waiting, ready, state)
        elif outcome.status is TaskStatus.UP_FOR_RETRY:
            specs[key] = spec
            seq += 1
            heapq.heappush(delayed, (time.monotonic() + outcome.wait, seq, key, attempt + 1))
        else:
            specs.pop(key, None)
            assert outcome.error is not None
            state.failures[key] = outcome.error
            _skip_downstream(state, key, down)


def _release(
    key: str,
    down: dict[str, list[str]],
    waiting: dict[str, int],
    ready: deque[str],
    state: RunState,
) -> None:
    for d in down[key]:
        waiting[d] -= 1
        if waiting[d] == 0 and d not in state.outputs:
            ready.append(d)


def _skip_downstream(state: RunState, failed: str, down: dict[str, list[str]]) -> None:
    """Mark every task downstream of ``failed`` skipped: it can never run in this run."""
    now = time.time()
    stack = list(down[failed])
    while stack:
        k = stack.pop()
        if state.statuses.get(k, TaskStatus.PENDING) is not TaskStatus.PENDING:
            continue
        state.recorder.task(
            k,
            1,
            TaskStatus.SKIPPED,
            ended_at=now,
            error_message=f"not run: upstream task {failed!r} failed",
        )
        state.set_status(k, TaskStatus.SKIPPED)
        stack.extend(down[k])
