"""What users write: tasks, workflows, jobs, config, resources and their options.

Pure data and validation, with no I/O: this layer imports nothing of the
others, but for ``run_facade``, through which the run conveniences on a job
(``run``, ``rerun``, ``runs``...) reach execution and storage when called.
The import-linter contracts in ``pyproject.toml`` hold it to that.
"""

from __future__ import annotations

from conveyor.definitions.config import Config, ConfigMapping, RunConfig, config_mapping
from conveyor.definitions.context import RunContext, TaskContext
from conveyor.definitions.durations import parse_duration, parse_memory
from conveyor.definitions.execute import ExecuteOptions
from conveyor.definitions.graph import Graph, Node, OutputRef
from conveyor.definitions.job import Job, graph, job, workflow
from conveyor.definitions.job_options import JobOptions
from conveyor.definitions.partitions import StaticPartitions, partition_config
from conveyor.definitions.resources import Resource, ResourceMap, resource
from conveyor.definitions.retry import RetryPolicy
from conveyor.definitions.schedule import Schedule
from conveyor.definitions.sensor import RunRequest, Sensor, SensorContext, sensor
from conveyor.definitions.task import Task, task
from conveyor.definitions.time_partitions import (
    DailyPartitions,
    HourlyPartitions,
    MonthlyPartitions,
    MultiPartitions,
    WeeklyPartitions,
)
from conveyor.definitions.triggers import Trigger, parse_trigger
from conveyor.definitions.workflow import TaskHandle
from conveyor.definitions.workspace_def import Definitions, Workspace

__all__ = [
    "Config",
    "ConfigMapping",
    "DailyPartitions",
    "Definitions",
    "ExecuteOptions",
    "Graph",
    "HourlyPartitions",
    "Job",
    "JobOptions",
    "MonthlyPartitions",
    "MultiPartitions",
    "Node",
    "OutputRef",
    "Resource",
    "ResourceMap",
    "RetryPolicy",
    "RunConfig",
    "RunContext",
    "RunRequest",
    "Schedule",
    "Sensor",
    "SensorContext",
    "StaticPartitions",
    "Task",
    "TaskContext",
    "TaskHandle",
    "Trigger",
    "WeeklyPartitions",
    "Workspace",
    "config_mapping",
    "graph",
    "job",
    "parse_duration",
    "parse_memory",
    "parse_trigger",
    "partition_config",
    "resource",
    "sensor",
    "task",
    "workflow",
]
