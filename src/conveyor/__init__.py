"""Conveyor: jobs written as Python code, run, scheduled, chained, watched and deployed.

The public API. Definitions import eagerly (they are light); the storage and
execution layers load on first use, so ``import conveyor`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.definitions import (
    Config,
    ConfigMapping,
    Job,
    Resource,
    ResourceMap,
    RetryPolicy,
    RunConfig,
    RunContext,
    RunRequest,
    Schedule,
    SensorContext,
    StaticPartitions,
    Task,
    TaskContext,
    config_mapping,
    graph,
    job,
    resource,
    sensor,
    task,
    workflow,
)
from conveyor.definitions.addin import Addin, ExcelAddin, Queue, StreamClosed
from conveyor.definitions.interactive import Interactive, InteractiveContext, interactive
from conveyor.definitions.partitions import partition_config
from conveyor.definitions.pipeline_run import pipeline_run
from conveyor.definitions.secrets import Secret
from conveyor.definitions.time_partitions import (
    DailyPartitions,
    HourlyPartitions,
    MonthlyPartitions,
    MultiPartitions,
    WeeklyPartitions,
)
from conveyor.definitions.workloads import App, Service, Workload
from conveyor.definitions.workspace_def import Definitions, Workspace
from conveyor.errors import (
    ConfigError,
    ConveyorError,
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    ExecutionError,
    InfrastructureError,
    InsufficientResourcesError,
    MissingInputError,
    NotFoundError,
    RunCanceledError,
    ScheduleError,
    SelectionError,
    StorageError,
    TaskOutOfMemoryError,
    TaskTimeoutError,
    UserCodeError,
    WorkerLostError,
    WorkspaceError,
)

if TYPE_CHECKING:
    from conveyor.execution.deploy import deploy_code as deploy
    from conveyor.execution.deploy import versions
    from conveyor.execution.executors.dask import DaskExecutor
    from conveyor.execution.executors.multiprocess import MultiprocessExecutor
    from conveyor.execution.result import RunResult
    from conveyor.storage.instance import Instance
    from conveyor.storage.states import RunStatus, TaskStatus

__version__ = "0.1.0"

_LAZY = {
    "DaskExecutor": "conveyor.execution.executors.dask",
    "Instance": "conveyor.storage.instance",
    "MultiprocessExecutor": "conveyor.execution.executors.multiprocess",
    "RunResult": "conveyor.execution.result",
    "RunStatus": "conveyor.storage.states",
    "TaskStatus": "conveyor.storage.states",
    # name -> "module:attribute" where the attribute has another name there.
    "deploy": "conveyor.execution.deploy:deploy_code",
    "versions": "conveyor.execution.deploy:versions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    import importlib

    module, _, attribute = module.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value
    return value


__all__ = [
    "Addin",
    "App",
    "Config",
    "ConfigError",
    "ConfigMapping",
    "ConveyorError",
    "CycleError",
    "DailyPartitions",
    "DaskExecutor",
    "DefinitionError",
    "Definitions",
    "DuplicateTaskError",
    "ExcelAddin",
    "ExecutionError",
    "HourlyPartitions",
    "InfrastructureError",
    "Instance",
    "InsufficientResourcesError",
    "Interactive",
    "InteractiveContext",
    "Job",
    "MissingInputError",
    "MonthlyPartitions",
    "MultiPartitions",
    "MultiprocessExecutor",
    "NotFoundError",
    "Queue",
    "Resource",
    "ResourceMap",
    "RetryPolicy",
    "RunCanceledError",
    "RunConfig",
    "RunContext",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "Schedule",
    "ScheduleError",
    "Secret",
    "SelectionError",
    "SensorContext",
    "Service",
    "StaticPartitions",
    "StorageError",
    "StreamClosed",
    "Task",
    "TaskContext",
    "TaskOutOfMemoryError",
    "TaskStatus",
    "TaskTimeoutError",
    "UserCodeError",
    "WeeklyPartitions",
    "WorkerLostError",
    "Workload",
    "Workspace",
    "WorkspaceError",
    "config_mapping",
    "deploy",
    "graph",
    "interactive",
    "job",
    "partition_config",
    "pipeline_run",
    "resource",
    "sensor",
    "task",
    "versions",
    "workflow",
]
