"""The in-process executor: steps in dependency order, one at a time, in the run's own thread.

The cheapest way to run (tens of microseconds of overhead per task). A task
waiting to be retried, or for a slot of its pool, does not block the others:
the engine runs ready tasks while it waits.

Stops are cooperative: a cancel request is seen between steps, and a step
past its timeout is not interrupted (nothing is raised into a running
thread); it fails with ``TaskTimeoutError`` when it returns, and ``async``
tasks are cancelled at their next ``await``. A step over its ``memory=``
(the growth of the run's process while it ran, ``growth``) fails when it
returns, with ``TaskOutOfMemoryError``. To stop a step that ignores
them, run it on a process executor, which kills the step's process tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, TaskOutOfMemoryError, UserCodeError
from conveyor.execution.executors.base import StoredValue
from conveyor.execution.executors.growth import Growth
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunMeta, RunState
from conveyor.execution.steps import Report, StepSpec, call_task

if TYPE_CHECKING:
    from conveyor.execution.engine import Running, Wakeup


class InProcessExecutor:
    """Runs every step in the calling thread."""

    name = "in_process"
    # Resources are set up in the run's process, where the tasks run.
    runs_here = True

    def run(self, state: RunState, plan: Plan | None) -> None:
        from conveyor.execution.engine import run_steps

        run_steps(state, plan, _HereBackend(state))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "InProcessExecutor()"


def _over_memory(report: Report, spec: StepSpec, grew: int) -> None:
    """Fail the report of a step that returned after growing the run's process past its
    memory= (what it wrote is kept; its value is dropped)."""
    report.value = None
    report.error = TaskOutOfMemoryError(
        f"task {spec.key!r} used {grew / 1e6:.0f} MB, more than its memory="
        f"{spec.memory / 1e6 if spec.memory else 0:.0f} MB; a step running in the run's process "
        f"is not interrupted, so it failed when it returned (the multiprocess executor stops a "
        f"step when it passes its memory=)"
    )
    report.user_code = False
    report.traceback_text = UserCodeError.format(report.error)


class _HereBackend:
    """Calls run to their end inside ``submit``, in the run's thread."""

    cpu_budget = float("inf")
    stop_grace = 0.0
    stop_note = "was stopped"

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.done: list[tuple[object, Report]] = []

    def refuse(self, spec: StepSpec) -> str | None:
        return None

    def has_room(self) -> bool:
        return not self.done  # one call at a time: report it before the next

    def submit(self, spec: StepSpec, attempt: int, meta: RunMeta) -> object:
        state = self.state
        handle = object()
        if spec.memory is None:
            report = call_task(spec, attempt, meta, state.resources, echo=state.echo)
        else:
            with Growth() as growth:
                report = call_task(spec, attempt, meta, state.resources, echo=state.echo)
            if report.error is None and growth.grew > spec.memory:
                _over_memory(report, spec, growth.grew)
        self.done.append((handle, report))
        return handle

    def wait(
        self, timeout: float, running: dict[object, Running], wake: Wakeup
    ) -> list[tuple[object, Report]]:
        done, self.done = self.done, []
        return done

    def stop(self, handle: object, error: ConveyorError) -> None:
        pass  # nothing runs between two calls of the engine

    def load(self, value: StoredValue) -> Any:
        return self.state.instance.result_store.load(value.pointer)

    def close(self) -> None:
        pass
