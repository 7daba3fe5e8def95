"""The context objects that tasks and job bodies receive.

These are plain data holders defined here so that parameters can be
recognised at definition time; the execution layer fills them in.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any


class RunContext:
    """What a ``@job`` body (or any task) knows about the run it is part of.

    Attributes:
        run_id: the id of the run.
        job_name: the job's name.
        tags: the run's tags.
        config: the validated config of this job body or task (``None`` if it has none).
        resources: the run's resources by key, set up and ready to use.
        log: a logger whose records are stored with the run's logs.
        interval: the ``Interval`` ``[start, end)`` the run processes, for runs
            of timed jobs and backfills; ``None`` otherwise.
        refresh: whether this run should refresh (reload from scratch): it was
            triggered with a refresh, or received one from an upstream job.
        partition: the key of the job's partitions the run processes, or ``None``
            (``partition_key`` is the same, Dagster's name).
        partition_window: the ``(start, end)`` of the period a time partition's
            key covers (of its time dimension for ``MultiPartitions``), as
            time-zone-aware datetimes; ``None`` otherwise.
        partition_keys: the key per dimension of ``MultiPartitions``
            (``{"date": "2024-01-01", "region": "us"}``); ``None`` otherwise.
        task_key: in a job's ``on_failure`` hook, the key of the task whose error
            the hook receives (``None`` when the run failed outside any task);
            ``None`` in a ``@job`` body and in ``on_success`` hooks.
    """

    __slots__ = (
        "_log_factory",
        "_logger",
        "config",
        "interval",
        "job_name",
        "partition",
        "partition_keys",
        "partition_window",
        "refresh",
        "resources",
        "run_id",
        "tags",
        "task_key",
    )

    attempt: int = 1

    def __init__(
        self,
        *,
        run_id: str,
        job_name: str,
        tags: dict[str, str],
        config: Any,
        resources: dict[str, Any],
        log_factory: Any,
        interval: Any = None,
        refresh: bool = False,
        partition: str | None = None,
        task_key: str | None = None,
        partition_window: tuple[datetime, datetime] | None = None,
        partition_keys: dict[str, str] | None = None,
    ) -> None:
        self.task_key = task_key
        self.interval = interval
        self.partition = partition
        self.partition_window = partition_window
        self.partition_keys = partition_keys
        self.refresh = refresh
        self.run_id = run_id
        self.job_name = job_name
        self.tags = tags
        self.config = config
        self.resources = resources
        self._log_factory = log_factory
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def partition_key(self) -> str | None:
        """The key of the job's partitions the run processes (``partition``)."""
        return self.partition

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger for this run or task; its records go to the task's stored log."""
        if self._logger is None:
            self._logger = self._log_factory(self)
        assert self._logger is not None
        return self._logger

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.run_id!r}, job_name={self.job_name!r})"


class TaskContext(RunContext):
    """What a running task knows: the run's context plus its own key and attempt.

    Attributes:
        task_key: the task's key in the run (``extract``, ``extract_2``...).
        attempt: 1 for the first try, 2 for the first retry, and so on.
    """

    __slots__ = ("attempt",)
    task_key: str

    def __init__(self, *, task_key: str, attempt: int, **kwargs: Any) -> None:
        super().__init__(task_key=task_key, **kwargs)
        self.attempt = attempt

    def __repr__(self) -> str:
        return (
            f"TaskContext(run_id={self.run_id!r}, task_key={self.task_key!r}, "
            f"attempt={self.attempt})"
        )
