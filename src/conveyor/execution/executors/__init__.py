"""Executors: what runs a workflow's steps. Chosen per job or per run by name or object.

- ``"in_process"`` (default): in the run's own thread; the cheapest.
- ``"multiprocess"`` / ``MultiprocessExecutor(max_workers=None, cpu=None)``: a warm
  pool of worker processes, with isolation, hard timeouts and memory limits.
- ``"dask"`` / ``DaskExecutor(address=None, **cluster_options)``: a Dask cluster
  (``pip install 'conveyor[dask]'``).
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import ConfigError
from conveyor.execution.executors.base import Executor
from conveyor.execution.executors.in_process import InProcessExecutor

NAMES = ("in_process", "multiprocess", "dask")


def resolve_executor(value: Any) -> Executor:
    """An executor from a name, an executor object, or ``None`` (in-process)."""
    if value is None or value == "in_process":
        return InProcessExecutor()
    if value == "multiprocess":
        from conveyor.execution.executors.multiprocess import MultiprocessExecutor

        return MultiprocessExecutor()
    if value == "dask":
        from conveyor.execution.executors.dask import DaskExecutor

        return DaskExecutor()
    if hasattr(value, "run") and hasattr(value, "name"):
        return value  # type: ignore[no-any-return]
    raise ConfigError(
        f"unknown executor {value!r}; use one of {', '.join(NAMES)} or an "
        f"executor object such as MultiprocessExecutor(max_workers=4)"
    )


__all__ = ["NAMES", "Executor", "InProcessExecutor", "resolve_executor"]
