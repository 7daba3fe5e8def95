"""Pool slots of tasks: a task with ``pool=`` holds a slot of its pool while an attempt runs.

The slot is a lease of ``pool:<name>`` held as ``<run id>/<task key>``, the
same leases a job's ``pool=`` takes for its runs, so one limit counts runs
and tasks of every job. The run's heartbeat renews it and the end of the run
frees it, so a run whose process dies frees its tasks' slots within the
lease's expiry. A slot is given back after each attempt: a task waiting to
be retried holds none.

A task whose job already holds a slot of the same pool runs on the run's
slot; asking for a second one could wait forever with a limit of 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.execution.state import RunState

if TYPE_CHECKING:
    from conveyor.execution.steps import StepSpec


def pool_of(state: RunState, spec: StepSpec) -> str | None:
    """The pool whose slot the step must take, if any."""
    if spec.pool is None or spec.pool == state.job.pool:
        return None
    return spec.pool


def try_take(state: RunState, spec: StepSpec) -> bool:
    """Take the step's pool slot if one is free (or it needs none); True if it may start."""
    pool = pool_of(state, spec)
    if pool is None:
        return True
    instance = state.instance
    limit = instance.pool_store.get(pool)
    if limit is None:
        return True  # a pool without a limit never makes a task wait
    if instance.lease_store.acquire(f"pool:{pool}", _holder(state, spec), limit):
        return True
    with state.lock:
        first = spec.key not in state.pool_waits
        state.pool_waits.add(spec.key)
    if first:
        state.recorder.event(
            "pool_wait",
            f"task {spec.key!r} waits for a slot of pool {pool!r} (all {limit} are held; "
            f"see `conveyor pools list`)",
            task_key=spec.key,
            data={"pool": pool, "limit": limit},
        )
    return False


def unpark(
    state: RunState, parked: list[tuple[StepSpec, int]], most: int | None = None
) -> list[tuple[str, int]]:
    """Waiting steps (with their attempt) that got their pool slot now, oldest first, at
    most ``most``; they leave ``parked``. Each pool is asked for its oldest waiter and
    not again while it is full, so a pass costs a query per pool, not per waiter."""
    full: set[str | None] = set()
    ready: list[tuple[str, int]] = []
    for item in list(parked):
        if most is not None and len(ready) >= most:
            break
        spec, attempt = item
        if spec.pool in full:
            continue
        if try_take(state, spec):
            parked.remove(item)
            ready.append((spec.key, attempt))
        else:
            full.add(spec.pool)
    return ready


def give_back(state: RunState, spec: StepSpec) -> None:
    """Free the step's pool slot, if it holds one."""
    pool = pool_of(state, spec)
    if pool is not None:
        state.instance.lease_store.release_one(f"pool:{pool}", _holder(state, spec))


def _holder(state: RunState, spec: StepSpec) -> str:
    return f"{state.run_id}/{spec.key}"
