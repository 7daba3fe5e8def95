"""Running jobs: plans, the one engine and its executors, the step runner, run results.

The names below load on first use: a process that needs one module of this package
(a workload's launcher, an app's server) does not pay for the engine's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.execution.dynamic import MappedFutures, StepFuture
    from conveyor.execution.launch import execute_job
    from conveyor.execution.rerun import rerun_job
    from conveyor.execution.result import RunResult

__all__ = ["MappedFutures", "RunResult", "StepFuture", "execute_job", "rerun_job"]

_WHERE = {
    "MappedFutures": "conveyor.execution.dynamic",
    "StepFuture": "conveyor.execution.dynamic",
    "execute_job": "conveyor.execution.launch",
    "rerun_job": "conveyor.execution.rerun",
    "RunResult": "conveyor.execution.result",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.execution' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
