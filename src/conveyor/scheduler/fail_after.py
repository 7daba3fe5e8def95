"""Runs past their job's ``fail_after`` fail, their running tasks stopped.

Datatailr's ``fail_after`` counts from a run's start. It differs from dlt's
``execute={"timeout": ...}`` (``overdue``, which asks the run to stop and ends
it ``canceled``) in its outcome: the run ends ``failure``, so that it fires
``job.fail:`` chains and is retried by ``execute={"retries": N}``. Each pass
looks at the running runs of the jobs that have the option (one query, as
``overdue`` does) and ends each late one as the monitor ends a dead run: in
one transaction, its row locked and read again, the run ``failure`` with the
error ``failed: ran past its fail_after of 2h``, its running tasks
``canceled``, its slots freed and an event recorded. The run's process then
finds its run ended from outside and stops its tasks (a run worker's whole
process group is stopped by its supervisor when they do not stop in time).
"""

from __future__ import annotations

import logging
import time

from conveyor.definitions.deadlines import deadline_text
from conveyor.scheduler.firing import Scope
from conveyor.storage.events import EventStore
from conveyor.storage.instance import Instance
from conveyor.storage.leases import LeaseStore
from conveyor.storage.runs import RunStore
from conveyor.storage.states import RunStatus
from conveyor.storage.task_runs import TaskRunStore

log = logging.getLogger("conveyor.daemon")

FAIL_AFTER_EVENT = "run_fail_after"


def fail_after_reason(seconds: float) -> str:
    """The error of a run that ran too long: ``failed: ran past its fail_after of 2h``."""
    return f"failed: ran past its fail_after of {deadline_text(seconds)}"


def fail_late_runs(scope: Scope, now: float) -> list[str]:
    """Fail the running runs of ``scope``'s jobs started more than their job's
    ``fail_after`` before ``now``; returns the ids of the runs failed."""
    limited = {name: job for name, job in scope.jobs.items() if job.fail_after is not None}
    if not limited:
        return []
    instance = scope.instance
    failed: list[str] = []
    for run in instance.run_store.running(limited):
        limit = limited[run.job_name].fail_after
        assert limit is not None
        if run.started_at is None or now - run.started_at.timestamp() <= limit:
            continue
        if fail_run(instance, run.id, limit, now):
            failed.append(run.id)
            log.warning(
                "run %s of %s ran past its fail_after of %s; it failed and its tasks are "
                "being stopped",
                run.id[:8],
                run.job_name,
                deadline_text(limit),
            )
    return failed


def fail_run(instance: Instance, run_id: str, limit: float, now: float) -> bool:
    """End running run ``run_id`` ``failure`` for running past ``limit`` seconds, in one
    transaction; False (and nothing written) when it is no longer running or not yet due."""
    reason = fail_after_reason(limit)
    with instance.db.write() as conn:
        run = RunStore.get_in(conn, run_id, lock=True)
        started = run.started_at
        if run.status is not RunStatus.RUNNING or started is None:
            return False
        if now - started.timestamp() <= limit:
            return False
        TaskRunStore.end_unfinished_in(
            conn,
            run_id,
            f"stopped: the run ran past its fail_after of {deadline_text(limit)}",
            canceled=True,
        )
        RunStore.set_status_in(conn, run_id, RunStatus.FAILURE, error=reason)
        LeaseStore.release_in(conn, run_id)
        EventStore.write(
            conn,
            [
                {
                    "run_id": run_id,
                    "task_key": None,
                    "attempt": None,
                    "at": time.time(),
                    "kind": FAIL_AFTER_EVENT,
                    "message": f"run {run_id[:8]} {reason.removeprefix('failed: ')}; it "
                    f"failed and its running tasks are being stopped",
                    "data": {"fail_after": limit},
                }
            ],
        )
    return True
