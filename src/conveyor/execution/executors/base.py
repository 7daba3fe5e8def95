"""The executor seam: what runs a run's steps, and helpers the engine and executors share."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from conveyor.definitions.graph import Node, OutputRef, replace_leaves
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunState
from conveyor.storage.states import TaskStatus


class Executor(Protocol):
    """Runs a run's steps (a plan's, or a ``@job`` body's when ``plan`` is None) on the
    one engine (``execution.engine``): results land in ``state.outputs``, errors in
    ``state.failures``; every attempt is recorded through the step functions."""

    name: str

    def run(self, state: RunState, plan: Plan | None) -> None: ...

    def close(self) -> None:
        """Release what the executor holds (worker processes, cluster clients)."""
        ...


class StoredValue:
    """Stands for a large output that a worker wrote to the result store itself.

    It crosses process boundaries instead of the bytes; whoever needs the
    value loads it from the store (``load``).
    """

    __slots__ = ("pointer",)

    def __init__(self, pointer: dict[str, Any]) -> None:
        self.pointer = pointer

    def __repr__(self) -> str:
        return f"<StoredValue {self.pointer.get('uri')} ({self.pointer.get('size')} bytes)>"


def resolve_args(
    node: Node, values: dict[str, Any], load: Callable[[StoredValue], Any] | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The node's arguments with each upstream reference replaced by its value.

    A ``StoredValue`` is passed on as it is (the worker loads it), unless only
    an item of it is wanted: then ``load`` fetches it here.
    """
    if not node.has_refs:
        return node.args, node.kwargs

    def value_of(leaf: Any) -> Any:
        if isinstance(leaf, OutputRef):
            v = values[leaf.key]
            if leaf.path and isinstance(v, StoredValue) and load is not None:
                v = load(v)
            for p in leaf.path:
                v = v[p]
            return v
        return leaf

    return replace_leaves(node.args, value_of), replace_leaves(node.kwargs, value_of)


class Frontier:
    """Which steps can start: dependency counts, release and skip-on-failure.

    Steps come from a plan, or one by one as a running ``@job`` body calls
    tasks (``add``).
    """

    def __init__(self, state: RunState, plan: Plan | None) -> None:
        self.state = state
        self.down: dict[str, list[str]] = plan.downstream() if plan is not None else {}
        self.waiting = {k: len(d) for k, d in plan.deps.items()} if plan is not None else {}
        self.ready: deque[str] = deque(
            k for k, n in self.waiting.items() if n == 0 and k not in state.outputs
        )
        for key in list(self.waiting):
            if key in state.outputs:  # reused from an earlier run
                self.release(key)

    def add(self, key: str, deps: list[str]) -> str | None:
        """A new step that waits for ``deps``; the failed dependency if one failed already."""
        state = self.state
        count = 0
        for d in deps:
            if d in state.outputs:
                continue
            if d in state.failures or state.statuses.get(d) in (
                TaskStatus.FAILURE,
                TaskStatus.SKIPPED,
                TaskStatus.CANCELED,
            ):
                return d
            count += 1
            self.down.setdefault(d, []).append(key)
        self.waiting[key] = count
        if count == 0:
            self.ready.append(key)
        return None

    def release(self, key: str) -> None:
        """``key`` succeeded: its downstream steps are one dependency closer to ready."""
        for d in self.down.get(key, ()):
            self.waiting[d] -= 1
            if self.waiting[d] == 0 and d not in self.state.outputs:
                self.ready.append(d)

    def skip_downstream(self, failed: str) -> list[str]:
        """Mark every task downstream of ``failed`` skipped: it can never run in this run.

        Returns the keys skipped.
        """
        now = time.time()
        skipped: list[str] = []
        stack = list(self.down.get(failed, ()))
        while stack:
            k = stack.pop()
            if self.state.statuses.get(k, TaskStatus.PENDING) is not TaskStatus.PENDING:
                continue
            self.state.recorder.task(
                k,
                1,
                TaskStatus.SKIPPED,
                ended_at=now,
                error_message=f"not run: upstream task {failed!r} failed",
            )
            self.state.set_status(k, TaskStatus.SKIPPED)
            skipped.append(k)
            stack.extend(self.down.get(k, ()))
        return skipped
