"""Expired runs: a queued run not started within its job's ``expire_after`` is canceled.

Datatailr's ``expire_after``: however a run was queued (a trigger, a backfill,
``conveyor run --detach``), it counts from the moment it was queued (the
run's ``created_at``, so nothing more is stored and a daemon that restarts
sees the same deadline). The daemon looks before it launches, about once a
second, at the oldest queued runs of the jobs that have the option (one
indexed query per such job), and cancels each expired one with the reason
``expired: not started within 30m``, shown by ``conveyor runs show`` and the
UI. The run's row is locked and read again in the transaction that cancels
it and records the event, so with two daemons a run expires exactly once,
and a run a launcher took meanwhile is left to run.
"""

from __future__ import annotations

import logging
import time

from conveyor.definitions.deadlines import deadline_text
from conveyor.scheduler.firing import Scope
from conveyor.storage.events import EventStore
from conveyor.storage.instance import Instance
from conveyor.storage.runs import RunStore
from conveyor.storage.states import RunStatus

log = logging.getLogger("conveyor.daemon")

# Seconds between two looks at the queue: expire_after counts in minutes, not passes.
EXPIRE_EVERY = 1.0
# The most queued runs of one job read at a time; more wait for the next look.
EXPIRE_BATCH = 100
EXPIRED_EVENT = "run_expired"


def expiry_reason(seconds: float) -> str:
    """The status message of a run that expired: ``expired: not started within 30m``."""
    return f"expired: not started within {deadline_text(seconds)}"


class Expiry:
    """The daemon's step that cancels the queued runs past their job's ``expire_after``."""

    def __init__(self, scope: Scope, *, every: float = EXPIRE_EVERY) -> None:
        self.scope = scope
        self.every = every
        self._looked = float("-inf")

    def __call__(self, now: float) -> list[str]:
        """Cancel the expired queued runs (at most one look per ``every`` seconds); returns
        the ids of the runs this call canceled."""
        if now - self._looked < self.every:
            return []
        self._looked = now
        return expire_queued_runs(self.scope, now)


def expire_queued_runs(scope: Scope, now: float) -> list[str]:
    """Cancel the queued runs of ``scope``'s jobs queued more than their job's
    ``expire_after`` before ``now``; returns the ids of the runs canceled."""
    instance = scope.instance
    expired: list[str] = []
    for job in scope.jobs.values():
        limit = job.expire_after
        if limit is None:
            continue
        for run in instance.run_store.oldest_queued(job.name, EXPIRE_BATCH):
            if now - run.created_at.timestamp() <= limit:
                break  # oldest first: the others were queued later
            if expire_run(instance, run.id, limit, now):
                expired.append(run.id)
                log.warning(
                    "run %s of %s expired: not started within %s",
                    run.id[:8],
                    job.name,
                    deadline_text(limit),
                )
    return expired


def expire_run(instance: Instance, run_id: str, limit: float, now: float) -> bool:
    """Cancel queued run ``run_id`` as expired, with its event, in one transaction; False
    (and nothing written) when it is no longer queued or not yet due."""
    reason = expiry_reason(limit)
    with instance.db.write() as conn:
        run = RunStore.get_in(conn, run_id, lock=True)
        if run.status is not RunStatus.QUEUED or now - run.created_at.timestamp() <= limit:
            return False
        RunStore.set_status_in(conn, run_id, RunStatus.CANCELED, error=reason)
        EventStore.write(
            conn,
            [
                {
                    "run_id": run_id,
                    "task_key": None,
                    "attempt": None,
                    "at": time.time(),
                    "kind": EXPIRED_EVENT,
                    "message": f"{reason} of being queued; canceled by the scheduler",
                    "data": {"expire_after": limit},
                }
            ],
        )
    return True
