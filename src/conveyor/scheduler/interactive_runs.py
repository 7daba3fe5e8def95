"""Each start of an interactive job is a run: one task, ``serve``, whose output is
the process's, live while it serves and stored when it stops.

The supervisor opens the run before it starts the process (``open_run``), points
the process's stdout and stderr at the task's live files (``output_files``), hands
the run to the process once it runs (``began``: the judge of dead runs then sees
the run alive as long as the process is), and ends it when the process stops
(``end_run``), storing its output like any task's. The run is:

- ``success`` when it stopped after its idle timeout, or exited with code 0;
- ``canceled`` when a person stopped it (or canceled its run), or its code no
  longer declares it;
- ``failure`` when it crashed, was killed (memory, health) or ran past its
  execute timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from conveyor.definitions.interactive import Interactive
from conveyor.execution.workload_launch import INTERACTIVE_TASK
from conveyor.storage.instance import Instance
from conveyor.storage.logs import live_file
from conveyor.storage.states import RunStatus, TaskStatus
from conveyor.storage.task_runs import TaskRunStore

log = logging.getLogger("conveyor.supervisor")

TASK = INTERACTIVE_TASK
ATTEMPT = 1


def open_run(
    instance: Instance,
    workload: Interactive,
    origin: dict[str, Any],
    *,
    trigger: str,
    version: str | None,
) -> str:
    """Record a start of ``workload`` as a new run, ``starting``; its id."""
    run = instance.run_store.create(
        job_name=workload.name,
        job_version=version or "interactive",
        tags={"kind": "interactive", "interface": workload.interface},
        trigger=trigger,
        origin=origin,
        launched_by=trigger,
        status=RunStatus.STARTING,
    )
    return run.id


def output_files(instance: Instance, run_id: str) -> tuple[Path, Path] | None:
    """The live files the process writes its stdout and stderr to (None for an
    instance without a home: the workload's own log files serve then)."""
    directory = instance.log_store.live_dir(run_id)
    if directory is None:
        return None
    os.makedirs(directory, exist_ok=True)
    return (
        live_file(directory, TASK, ATTEMPT, "stdout"),
        live_file(directory, TASK, ATTEMPT, "stderr"),
    )


def began(instance: Instance, run_id: str, pid: int) -> None:
    """The process ``pid`` serves the run: it is ``running``, with ``pid`` responsible."""
    now = time.time()
    instance.run_store.hand_over(run_id, pid)
    with instance.db.write() as conn:
        instance.run_store.set_status_in(conn, run_id, RunStatus.RUNNING, at=now)
        TaskRunStore.write(
            conn,
            [
                {
                    "run_id": run_id,
                    "task_key": TASK,
                    "attempt": ATTEMPT,
                    "task_name": TASK,
                    "status": str(TaskStatus.RUNNING),
                    "started_at": now,
                    "ended_at": None,
                    "depends_on": [],
                    "error_type": None,
                    "error_message": None,
                    "error_traceback": None,
                    "retry_wait": None,
                }
            ],
            [],
        )


def stopping(instance: Instance, run_id: str) -> None:
    """The supervisor is stopping the run's process: it answers for the run until it
    ends it (the judge of dead runs would otherwise end it first, as lost)."""
    try:
        instance.run_store.reassign(run_id, os.getpid())
    except Exception as e:  # the database is away: the judge may end it as lost
        log.warning("interactive run %s: not taken back before its stop: %s", run_id, e)


def status_of(instance: Instance, run_id: str) -> RunStatus | None:
    """The run's status now, noting that its supervisor is alive; None if it is gone."""
    try:
        return instance.run_store.heartbeat(run_id)
    except Exception as e:  # deleted, or the database is away: look again later
        log.debug("interactive run %s: no heartbeat: %s", run_id, e)
        return None


def end_run(instance: Instance, run_id: str, status: RunStatus, error: str | None) -> None:
    """End the run as ``status`` (with ``error`` for a failure or a cancel), storing what
    the process wrote; a run already ended (by the judge of dead runs) keeps its end."""
    rows = []
    for stream in ("stdout", "stderr"):
        data = instance.log_store.read_live(run_id, TASK, ATTEMPT, stream)
        if data:
            rows.append(instance.log_store.put(run_id, TASK, ATTEMPT, stream, data))
    now = time.time()
    with instance.db.write() as conn:
        current = instance.run_store.get_in(conn, run_id, lock=True).status
        instance.log_store.write(conn, rows)
        task_to = {
            RunStatus.SUCCESS: TaskStatus.SUCCESS,
            RunStatus.FAILURE: TaskStatus.FAILURE,
            RunStatus.CANCELED: TaskStatus.CANCELED,
        }[status]
        TaskRunStore.finish_running_in(
            conn,
            run_id,
            TASK,
            ATTEMPT,
            task_to,
            at=now,
            error_type=None if status is RunStatus.SUCCESS else "conveyor.WorkloadStopped",
            error_message=None if status is RunStatus.SUCCESS else error,
        )
        if not current.is_terminal:
            if status is RunStatus.CANCELED and current is not RunStatus.CANCELING:
                instance.run_store.set_status_in(
                    conn, run_id, RunStatus.CANCELING, error=error, at=now
                )
            elif status is not RunStatus.CANCELED and current is RunStatus.CANCELING:
                status = RunStatus.CANCELED  # asked to stop, and it did
            if current is RunStatus.STARTING and status is RunStatus.SUCCESS:
                status = RunStatus.FAILURE  # it never served
            instance.run_store.set_status_in(conn, run_id, status, error=error, at=now)
    instance.log_store.stored(rows)
    with contextlib.suppress(OSError):
        instance.log_store.run_ended(run_id)
