"""The in-process executor: steps in dependency order, in the run's own thread.

The cheapest way to run (tens of microseconds of overhead per task). A task
waiting to be retried, or for a slot of its pool, does not block the others:
ready tasks run while it waits, and the executor sleeps only when nothing
else can run.
"""

from __future__ import annotations

import heapq
import time

from conveyor.execution import slots
from conveyor.execution.executors.base import Frontier, resolve_args
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunState
from conveyor.execution.steps import StepSpec, run_attempt, task_spec
from conveyor.storage.states import TaskStatus


class InProcessExecutor:
    """Runs every step in the calling thread."""

    name = "in_process"
    # A cancel request interrupts the run's thread, since the user's code runs in it.
    interrupt_on_cancel = True

    def run(self, state: RunState, plan: Plan) -> None:
        values = {**plan.inputs, **state.outputs}
        frontier = Frontier(state, plan)
        delayed: list[tuple[float, int, str, int]] = []
        # Steps waiting for a slot of their pool (task pool=), oldest first.
        waiting: list[tuple[StepSpec, int]] = []
        seq = 0
        specs: dict[str, StepSpec] = {}

        def spec_of(key: str) -> StepSpec:
            spec = specs.get(key)
            if spec is None:
                node = plan.steps[key]
                args, kwargs = resolve_args(node, values)
                config = state.config.task_configs.get(key)
                spec = task_spec(state, node.task, key, args, kwargs, list(node.deps), config)
                specs[key] = spec
            return spec

        while frontier.ready or delayed or waiting:
            if delayed and delayed[0][0] <= time.monotonic():
                _, _, key, attempt = heapq.heappop(delayed)
            elif frontier.ready:
                key, attempt = frontier.ready.popleft(), 1
            elif waiting:
                # Only steps waiting for a pool slot (or a later retry): ask again.
                got = slots.unpark(state, waiting, most=1)
                if not got:
                    pause = slots.WAIT_POLL
                    if delayed:
                        pause = min(pause, delayed[0][0] - time.monotonic())
                    time.sleep(max(0.0, pause))
                    continue
                [(key, attempt)] = got
            else:
                due, _, key, attempt = heapq.heappop(delayed)
                time.sleep(max(0.0, due - time.monotonic()))
            spec = spec_of(key)
            if not slots.try_take(state, spec):
                waiting.append((spec, attempt))  # other steps run meanwhile
                continue
            outcome = run_attempt(state, spec, attempt)
            if outcome.status is TaskStatus.SUCCESS:
                specs.pop(key, None)
                values[key] = state.outputs[key] = outcome.value
                frontier.release(key)
            elif outcome.status is TaskStatus.UP_FOR_RETRY:
                seq += 1
                heapq.heappush(delayed, (time.monotonic() + outcome.wait, seq, key, attempt + 1))
            else:
                specs.pop(key, None)
                assert outcome.error is not None
                state.failures[key] = outcome.error
                frontier.skip_downstream(key)

    def close(self) -> None:
        pass
