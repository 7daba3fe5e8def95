"""``RunResult``: what ``job.run()`` returns."""

from __future__ import annotations

from typing import Any

from conveyor.errors import ConveyorError, NotFoundError, UserCodeError
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunDetails, TaskRunRecord
from conveyor.storage.redact import Redactor
from conveyor.storage.states import RunStatus, TaskStatus


class RunResult:
    """The outcome of a run: its status, the tasks' statuses and outputs, the first error.

    Attributes:
        run_id: the id under which the run is recorded.
        job_name: the job that ran.
        status: the run's final ``RunStatus``.
        error: the first failure, or ``None``: a ``UserCodeError`` whose
            ``original`` is the task's own exception where user code raised, or
            the ``ConveyorError`` that stopped it (``TaskTimeoutError``,
            ``WorkerLostError``, ``TaskOutOfMemoryError``...).
        failures: every failed task's error, by task key.
    """

    def __init__(
        self,
        *,
        run_id: str,
        job_name: str,
        status: RunStatus,
        outputs: dict[str, Any],
        statuses: dict[str, TaskStatus],
        failures: dict[str, ConveyorError],
        error: ConveyorError | None,
        instance: Instance,
        redactor: Redactor | None = None,
    ) -> None:
        self.run_id = run_id
        self.job_name = job_name
        self.status = status
        self.error = error
        self.failures = failures
        self._outputs = outputs
        self._statuses = statuses
        self._instance = instance
        self._task_runs: list[TaskRunRecord] | None = None
        self._redactor = redactor

    def masked(self, text: str) -> str:
        """``text`` with the run's secret values replaced by ``***``, as the run's records
        show them: for printing an error (the errors here are the tasks' own)."""
        return self._redactor.text(text) if self._redactor else text

    @property
    def success(self) -> bool:
        return self.status is RunStatus.SUCCESS

    @property
    def task_keys(self) -> list[str]:
        return list(self._statuses)

    def task_status(self, task_key: str) -> TaskStatus:
        """The status of a task (of its latest attempt)."""
        self._check(task_key)
        return self._statuses[task_key]

    def output(self, task_key: str) -> Any:
        """The value the task returned (or reused) in this run."""
        self._check(task_key)
        if task_key in self._outputs:
            return self._outputs[task_key]
        raise NotFoundError(
            f"task {task_key!r} has no output in run {self.run_id}: its status is "
            f"{self._statuses[task_key]}"
        )

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs of every task that succeeded or was reused, by key."""
        return dict(self._outputs)

    @property
    def task_runs(self) -> list[TaskRunRecord]:
        """Every recorded attempt of every task, as stored."""
        if self._task_runs is None:
            self._task_runs = self._instance.task_run_store.for_run(self.run_id)
        return self._task_runs

    def details(self) -> RunDetails:
        """The stored run with its tasks and events."""
        return self._instance.run_details(self.run_id)

    def _check(self, task_key: str) -> None:
        if task_key not in self._statuses:
            raise NotFoundError(
                f"run {self.run_id} of {self.job_name!r} has no task {task_key!r} "
                f"(tasks: {', '.join(self._statuses) or 'none'})"
            )

    def raise_error(self) -> None:
        """Raise the first failure: the task's own exception where user code raised."""
        if self.error is None:
            return
        raise self.error.original if isinstance(self.error, UserCodeError) else self.error

    def __repr__(self) -> str:
        return f"<RunResult {self.job_name} {self.run_id[:8]} {self.status}>"
