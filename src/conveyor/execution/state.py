"""The state one run shares between its engine, its steps and its job-body frame."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conveyor.definitions.intervals import Interval
from conveyor.definitions.job import Job
from conveyor.definitions.retry import NO_RETRY, RetryPolicy
from conveyor.definitions.time_partitions import partition_facts
from conveyor.errors import ConveyorError
from conveyor.execution.runconfig import RunConfig
from conveyor.storage.instance import Instance
from conveyor.storage.recorder import RunRecorder
from conveyor.storage.states import TaskStatus

# Tag of a run that refreshes (see the daemon's refresh cascade).
REFRESH_TAG = "conveyor/refresh"


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What a task's context says about its run; picklable, for other processes."""

    run_id: str
    job_name: str
    tags: dict[str, str]
    interval: Interval | None = None
    refresh: bool = False
    partition: str | None = None
    # Where the tasks' live log files go (``storage.logs``); None: output kept in memory only.
    log_dir: str | None = None
    # The run's secret values, masked in what its tasks write (``storage.redact``).
    redact: tuple[str, ...] = ()
    # What the partition key means (``definitions.time_partitions.partition_facts``).
    partition_window: tuple[datetime, datetime] | None = None
    partition_keys: dict[str, str] | None = None


# Called as listener(task_key, status) whenever a task attempt changes state.
Listener = Callable[[str, TaskStatus], None]


@dataclass(slots=True)
class RunState:
    run_id: str
    job: Job
    instance: Instance
    recorder: RunRecorder
    config: RunConfig
    tags: dict[str, str]
    echo: bool = True
    listener: Listener | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, ConveyorError] = field(default_factory=dict)
    statuses: dict[str, TaskStatus] = field(default_factory=dict)
    reuse: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    interval: Interval | None = None
    partition: str | None = None
    # Set when someone asked to cancel the run (see execution.monitor).
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    # The run's fencing token (see storage.runs), and why the run was lost, once the
    # database refused it: the run stops, and nothing more of it is written.
    token: int | None = None
    lost: str | None = None
    # Steps that have waited for a pool slot (so the wait is recorded once).
    pool_waits: set[str] = field(default_factory=set)

    @property
    def meta(self) -> RunMeta:
        return RunMeta(
            self.run_id,
            self.job.name,
            self.tags,
            self.interval,
            self.tags.get(REFRESH_TAG) == "true",
            self.partition,
            self.instance.log_store.live_dir(self.run_id),
            self.config.redactor.values,
            *partition_facts(self.job.partitions, self.partition),
        )

    @property
    def default_retry(self) -> RetryPolicy:
        return self.job.retry or NO_RETRY

    def set_status(self, key: str, status: TaskStatus) -> None:
        self.statuses[key] = status
        if self.listener is not None:
            self.listener(key, status)
