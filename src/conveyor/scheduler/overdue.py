"""Overdue runs: a run past its job's ``execute={"timeout": ...}`` is asked to stop.

Every running run of a job with a timeout is looked at each pass (one
indexed query, however many there are); the run's process stops its tasks
and the run ends ``canceled``.
"""

from __future__ import annotations

import logging

from conveyor.scheduler.firing import Scope
from conveyor.storage.states import RunStatus

log = logging.getLogger("conveyor.daemon")


def stop_overdue_runs(scope: Scope, now: float) -> None:
    """Ask the running runs past their job's timeout to stop (they end canceled)."""
    timed_out = {name: job for name, job in scope.jobs.items() if job.execute.timeout is not None}
    if not timed_out:
        return
    instance = scope.instance
    for run in instance.run_store.running(timed_out):
        job = timed_out[run.job_name]
        timeout = job.execute.timeout
        if timeout is None or run.started_at is None:
            continue
        if now - run.started_at.timestamp() <= timeout:
            continue
        if instance.cancel_run(run.id) is RunStatus.CANCELING:
            instance.event_store.add(
                run.id,
                "run_timeout",
                f"run {run.id[:8]} of {job.name} ran past its execute timeout of "
                f"{timeout:g}s and is being stopped",
            )
            log.warning("run %s of %s ran past its timeout; stopping it", run.id[:8], job.name)
