"""The interval a timed job's run processes, with no gap after its last successful one.

A daemon asks for a run's interval for every tick it fires; the newest
successful interval end of each job is read once and then kept up to date
from the run ends, read in order (``cursor``), so that a quiet pass reads
one short range of ids and no run of a job.
"""

from __future__ import annotations

from conveyor.definitions.job import Job
from conveyor.scheduler.cursor import OrderedCursor
from conveyor.scheduler.firing import Scope
from conveyor.scheduler.timing import period_before, previous_instant
from conveyor.storage.runs import RunEnd
from conveyor.storage.states import RunStatus

# On its first read, the cache reads the ends of this many seconds back again: on
# PostgreSQL an end with a lower id may commit after a higher one is seen.
LOOK_BACK = 60.0


def run_interval(job: Job, at: float, last_end: float | None) -> tuple[float, float] | None:
    """The interval of a run of ``job`` fired at ``at``, by its timed trigger.

    A tick's run covers the period that just elapsed; an event's or a manual
    run the last elapsed period of the job's timed trigger. The start is
    pulled back to ``last_end``, where the last successful run's interval
    ended, so that no gap is left between intervals (after downtime, with
    catchup "latest").
    """
    timed = job.timed_trigger
    if timed is None:
        return None
    period = period_before(timed, previous_instant(timed, at))
    if period is None:
        return None
    start, end = period
    if last_end is not None and last_end < start:
        start = last_end
    if job.interval is not None:
        start = max(start, job.interval.start.timestamp())
        if start >= end:
            return None
    return (start, end)


class IntervalEnds:
    """``run_interval`` with each job's newest successful interval end kept here.

    A job's value is read once; after that, the first interval asked for in
    a pass (after ``stale``) reads the run ends since the last look and moves
    the values on. The start is pulled back no further than the end of an
    interval a run of the job is queued or running for: that period has its
    run (which may wait at a freshness gate, see ``freshness``), and the next
    one does not take it on too.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.ends: dict[str, float | None] = {}
        store = scope.instance.run_store
        self.cursor: OrderedCursor[RunEnd] = OrderedCursor(
            after=store.ends_after, among=store.ends_among, id_of=_end_id
        )
        self.fresh = False

    def stale(self) -> None:
        """Runs may have ended since: look before the next interval."""
        self.fresh = False

    def interval(self, job: Job, at: float) -> tuple[float, float] | None:
        if job.timed_trigger is None:
            return None
        if not self.fresh:
            self.refresh()
        store = self.scope.instance.run_store
        if job.name not in self.ends:
            self.ends[job.name] = store.last_interval_end(job.name)
        last = self.ends[job.name]
        pending = store.last_pending_interval_end(job.name)
        if pending is not None and (last is None or pending > last):
            last = pending
        return run_interval(job, at, last)

    def refresh(self) -> None:
        store = self.scope.instance.run_store
        if not self.cursor.started:
            self.cursor.start(store.last_end_id(before=self.scope.clock() - LOOK_BACK))
        batch = self.cursor.read()
        ids = [
            e.run_id
            for e in batch.rows
            if e.status is RunStatus.SUCCESS and e.job_name in self.ends
        ]
        for run in store.get_many(ids).values() if ids else ():
            if run.interval_end is not None:
                end = run.interval_end.timestamp()
                known = self.ends.get(run.job_name)
                self.ends[run.job_name] = end if known is None else max(known, end)
        self.cursor.commit(batch)
        self.fresh = True


def _end_id(end: RunEnd) -> int:
    return end.id
