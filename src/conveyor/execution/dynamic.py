"""The frame of a running ``@job`` body: task calls become steps of the one engine.

The body runs in a thread of its own while the run's thread runs the engine
(``execution.engine``). A plain call hands the step to the engine and waits
for its value (or raises its error); ``submit`` hands it over and returns a
``StepFuture``; ``map`` submits one step per item. Futures passed as
arguments become the step's recorded dependencies, and the engine starts it
when they are done, on the run's executor, as it starts a workflow's steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from conveyor.definitions.graph import iter_refs
from conveyor.definitions.task import Task
from conveyor.definitions.workflow import KeyCounter
from conveyor.execution.executors.base import StoredValue
from conveyor.execution.state import RunState
from conveyor.execution.timeouts import RunCanceled

if TYPE_CHECKING:
    from conveyor.execution.engine import Engine


class StepFuture:
    """The eventual value of a submitted step; pass it to other task calls as an argument."""

    __slots__ = ("_frame", "_future", "key")

    def __init__(self, key: str, future: Future[Any], frame: JobFrame) -> None:
        self.key = key
        self._future = future
        self._frame = frame

    def result(self, timeout: float | None = None) -> Any:
        """The step's value, waiting for it; raises the step's own error if it failed."""
        value = self._future.result(timeout)
        if isinstance(value, StoredValue):  # a large output a worker process stored
            value = self._frame.state.instance.result_store.load(value.pointer)
        return value

    def done(self) -> bool:
        return self._future.done()

    def __repr__(self) -> str:
        return f"<StepFuture {self.key} {'done' if self.done() else 'pending'}>"


class MappedFutures(list[StepFuture]):
    """The futures of a ``task.map(...)``; ``.result()`` gives all values in order."""

    def result(self, timeout: float | None = None) -> list[Any]:
        return [f.result(timeout) for f in self]


class JobFrame:
    """Routes task calls made while a ``@job`` body runs to the run's engine."""

    def __init__(self, state: RunState, engine: Engine) -> None:
        self.state = state
        self.engine = engine
        self._lock = threading.Lock()
        self._used: set[str] = {state.job.name}
        self._keys = KeyCounter()
        self._pending: list[Future[Any]] = []
        self._closed = False

    def _key(self, name: str) -> str:
        with self._lock:
            key = self._keys.next(name, self._used)
            self._used.add(key)
            return key

    def _submit(
        self, task: Task[Any], key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFuture:
        from conveyor.execution.engine import Call

        deps: list[str] = []
        for leaf in iter_refs((args, kwargs)):
            if isinstance(leaf, StepFuture) and leaf.key not in deps:
                deps.append(leaf.key)
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RunCanceled()
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(future)
        self.engine.post(Call(key, task, args, kwargs, deps, future))
        return StepFuture(key, future, self)

    # -- the CallFrame protocol ---------------------------------------------------------------

    def call(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._submit(task, self._key(task.name), args, kwargs).result()

    def submit(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> StepFuture:
        return self._submit(task, self._key(task.name), args, kwargs)

    def map(self, task: Task[Any], items: Iterable[Any], kwargs: dict[str, Any]) -> MappedFutures:
        base = self._key(task.name)
        return MappedFutures(
            self._submit(task, f"{base}[{i}]", (item,), dict(kwargs))
            for i, item in enumerate(items)
        )

    def close(self) -> None:
        """The engine stopped: calls still waiting, and any made from now on, raise
        ``RunCanceled`` in the body, which unwinds at its next task call."""
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, []
        for future in pending:
            if not future.done():
                future.set_exception(RunCanceled())
