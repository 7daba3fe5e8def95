"""Running jobs: plans, the one engine and its executors, the step runner, run results."""

from __future__ import annotations

from conveyor.execution.dynamic import MappedFutures, StepFuture
from conveyor.execution.launch import execute_job
from conveyor.execution.rerun import rerun_job
from conveyor.execution.result import RunResult

__all__ = ["MappedFutures", "RunResult", "StepFuture", "execute_job", "rerun_job"]
