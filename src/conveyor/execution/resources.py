"""Opening a run's resources before its tasks and closing them after, even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from conveyor.definitions.resources import Resource
from conveyor.errors import UserCodeError


@contextmanager
def opened(resources: dict[str, Any], needed: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Set up the resources (those in ``needed``, or all) and yield them ready for use.

    A ``Resource`` gets ``setup()`` now and ``teardown()`` at exit; an object
    with ``__enter__``/``__exit__`` is entered and the value it returns is
    what tasks receive; anything else is passed as it is. Teardown runs in
    reverse order even when the run fails.
    """
    ready: dict[str, Any] = {}
    with ExitStack() as stack:
        for key, res in resources.items():
            if needed is not None and key not in needed:
                continue
            where = f"resource {key!r}"
            try:
                if hasattr(res, "__enter__") and hasattr(res, "__exit__"):
                    ready[key] = stack.enter_context(res)
                    continue
                if isinstance(res, Resource):
                    res.setup()
                    stack.callback(_teardown, key, res)
            except Exception as e:
                raise UserCodeError(f"{where} setup", e) from e
            ready[key] = res
        yield ready


def _teardown(key: str, res: Resource) -> None:
    try:
        res.teardown()
    except Exception as e:
        raise UserCodeError(f"resource {key!r} teardown", e) from e
