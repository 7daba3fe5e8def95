"""Run and task states, and the one table of transitions allowed between them.

Every status write in storage goes through ``check_run`` / ``check_task``
and guards its SQL with the allowed sources, so nothing bypasses the table.
"""

from __future__ import annotations

from enum import StrEnum

from conveyor.errors import InvalidTransitionError


class RunStatus(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELING = "canceling"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in RUN_TERMINAL


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    UP_FOR_RETRY = "up_for_retry"
    SKIPPED = "skipped"
    REUSED = "reused"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TASK_TERMINAL


R, T = RunStatus, TaskStatus

RUN_TRANSITIONS: frozenset[tuple[RunStatus | None, RunStatus]] = frozenset(
    {
        (None, R.QUEUED),
        (None, R.STARTING),
        (R.QUEUED, R.STARTING),
        (R.QUEUED, R.CANCELED),
        (R.STARTING, R.RUNNING),
        # A start whose worker never came (its starter died before launching it).
        (R.STARTING, R.QUEUED),
        (R.STARTING, R.FAILURE),
        (R.STARTING, R.CANCELING),
        (R.STARTING, R.CANCELED),
        (R.RUNNING, R.SUCCESS),
        (R.RUNNING, R.FAILURE),
        (R.RUNNING, R.CANCELING),
        (R.CANCELING, R.CANCELED),
        (R.CANCELING, R.FAILURE),
    }
)

# Each attempt of a task is its own row: a failed attempt that will be tried
# again ends ``up_for_retry`` and the next attempt starts a new row.
TASK_TRANSITIONS: frozenset[tuple[TaskStatus | None, TaskStatus]] = frozenset(
    {
        (None, T.PENDING),
        (None, T.RUNNING),
        (None, T.REUSED),
        (None, T.SKIPPED),
        (None, T.CANCELED),
        (T.PENDING, T.RUNNING),
        (T.PENDING, T.SKIPPED),
        (T.PENDING, T.REUSED),
        (T.PENDING, T.CANCELED),
        (T.PENDING, T.FAILURE),
        (T.RUNNING, T.SUCCESS),
        (T.RUNNING, T.FAILURE),
        (T.RUNNING, T.UP_FOR_RETRY),
        (T.RUNNING, T.CANCELED),
    }
)

RUN_TERMINAL = frozenset({R.SUCCESS, R.FAILURE, R.CANCELED})
TASK_TERMINAL = frozenset({T.SUCCESS, T.FAILURE, T.UP_FOR_RETRY, T.SKIPPED, T.REUSED, T.CANCELED})


def run_sources(to: RunStatus) -> tuple[RunStatus, ...]:
    """The statuses a run may move to ``to`` from."""
    return tuple(f for f, t in RUN_TRANSITIONS if t == to and f is not None)


def check_run(frm: RunStatus | None, to: RunStatus, run_id: str) -> None:
    if (frm, to) not in RUN_TRANSITIONS:
        raise InvalidTransitionError(f"run {run_id}: cannot go from {frm or 'nothing'} to {to}")


def check_task(frm: TaskStatus | None, to: TaskStatus, where: str) -> None:
    if (frm, to) not in TASK_TRANSITIONS:
        raise InvalidTransitionError(f"task {where}: cannot go from {frm or 'nothing'} to {to}")
