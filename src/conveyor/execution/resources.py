"""Opening a run's resources before its tasks and closing them after, even on failure.

Tasks receive resources by parameter name, or read them from ``context.resources``
by attribute or key (Dagster's ``context.resources.database``). Those a task names
as parameters are opened before the run starts; any other is opened the first time
a task reads it, so ``context.resources.name`` works without naming the resource in
the task's signature.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest.mock import NonCallableMock

from conveyor.definitions.resources import Resource, ResourceFunction, ResourceMap
from conveyor.errors import ExecutionError, UserCodeError


class Resources(ResourceMap):
    """The run's resources ready for use, by key and by attribute (``resources.db``).

    A resource not opened yet is opened on first read, within the run; after the
    run it is an error to read one.
    """

    __slots__ = ("_lock", "_pending", "_stack")

    def __init__(self, stack: ExitStack | None = None) -> None:
        super().__init__()
        self._stack = stack
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __missing__(self, key: str) -> Any:
        with self._lock:
            if dict.__contains__(self, key):
                return dict.__getitem__(self, key)
            if key not in self._pending:
                known = ", ".join(sorted({*self, *self._pending})) or "none"
                raise KeyError(
                    f"no resource {key!r} in this run (resources: {known}); give it in the "
                    f"job's resources= or in run(resources=...)"
                )
            if self._stack is None:
                raise ExecutionError(f"resource {key!r} is read after its run ended")
            value = open_one(key, self._pending.pop(key), self._stack)
            self[key] = value
            return value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._pending

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResourceMap, (dict(self),))

    def close(self) -> None:
        """Refuse reads of resources not opened yet: the run is over."""
        self._stack = None


def open_one(key: str, res: Any, stack: ExitStack) -> Any:
    """Set up one resource on ``stack`` and return what tasks receive.

    A mock is passed as it is (its ``__enter__`` would hand over another mock); a
    ``@resource`` function is called (a generator is entered); an object with
    ``__enter__``/``__exit__`` is entered; a ``Resource`` gets ``setup()`` now and
    ``teardown()`` at exit; anything else is passed as it is.

    Raises:
        UserCodeError: the resource's setup raised.
    """
    try:
        if isinstance(res, NonCallableMock):
            return res
        if isinstance(res, ResourceFunction):
            return stack.enter_context(res.open())
        if hasattr(res, "__enter__") and hasattr(res, "__exit__"):
            return stack.enter_context(res)
        if isinstance(res, Resource):
            res.setup()
            stack.callback(_teardown, key, res)
    except Exception as e:
        raise UserCodeError(f"resource {key!r} setup", e) from e
    return res


@contextmanager
def opened(resources: dict[str, Any], needed: set[str] | None = None) -> Iterator[Resources]:
    """Set up the resources (those in ``needed``, or all) and yield them ready for use.

    The others are opened when a task first reads them (``context.resources.name``).
    Teardown runs in reverse order even when the run fails.
    """
    with ExitStack() as stack:
        ready = Resources(stack)
        try:
            for key, res in resources.items():
                if needed is not None and key not in needed:
                    ready._pending[key] = res
                else:
                    ready[key] = open_one(key, res, stack)
            yield ready
        finally:
            ready.close()


def _teardown(key: str, res: Resource) -> None:
    try:
        res.teardown()
    except Exception as e:
        raise UserCodeError(f"resource {key!r} teardown", e) from e
