"""Resources: long-lived objects (clients, connections) that tasks receive by name.

A resource is a ``Resource`` (typed fields the run config can set), a function made
with ``@resource`` (called once per run), or any other object, passed as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from pydantic import BaseModel, ConfigDict

from conveyor.errors import DefinitionError


class Resource(BaseModel):
    """Base for resources declared on a job and injected into tasks by parameter name.

    A resource is a pydantic model, so its fields are typed config that the run
    config can override under ``resources.<key>``. Override ``setup`` to open
    connections and ``teardown`` to close them; both run once per run, and
    ``teardown`` runs even when the run fails. Keep state that ``setup``
    makes (a connection) in attributes named with a leading ``_``: pydantic
    keeps those out of the config. Alternatively define
    ``__enter__``/``__exit__``; then tasks receive what ``__enter__`` returns.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def setup(self) -> None:
        """Prepare the resource before the first task of a run uses it."""

    def teardown(self) -> None:
        """Release what ``setup`` acquired; called once at the end of the run."""

    def with_overrides(self, values: dict[str, Any]) -> Resource:
        """A copy of this resource with the fields in ``values`` replaced and validated."""
        return type(self).model_validate({**self.model_dump(), **values})


class ResourceMap(dict[str, Any]):
    """A run's resources by key that also reads them by attribute: ``resources.db``.

    What ``context.resources`` is; the execution layer's subclass opens the ones
    no task names as a parameter when they are first read.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(e.args[0] if e.args else name) from None

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResourceMap, (dict(self),))


class ResourceFunction:
    """A function that makes a resource for each run, made by ``@resource``.

    A plain function makes the resource by returning it; a generator function
    yields it, and the code after its ``yield`` runs at the end of the run, even
    when the run fails (Dagster's ``@resource``).
    """

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[], Any]) -> None:
        if not callable(fn):
            raise DefinitionError(f"@resource decorates functions, got {fn!r}")
        name = getattr(fn, "__name__", repr(fn))
        required = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required:
            raise DefinitionError(
                f"@resource {name!r}: takes no parameters (it has {', '.join(required)}); "
                f"for a resource with config, subclass Resource and declare its fields"
            )
        self.fn = fn
        self.name = name

    def open(self) -> AbstractContextManager[Any]:
        """A context manager whose value is the resource for one run."""
        if inspect.isgeneratorfunction(self.fn):
            return contextmanager(self.fn)()
        return nullcontext(self.fn())

    def __repr__(self) -> str:
        return f"<resource {self.name}>"


def resource(fn: Callable[[], Any]) -> ResourceFunction:
    """Make a resource from a function called once per run (Dagster's ``@resource``).

    Without the decorator a function given in ``resources=`` is itself the resource,
    passed to tasks as it is.
    """
    return ResourceFunction(fn)
