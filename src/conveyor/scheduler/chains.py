"""Chained triggers and run retries, fired from the run ends in the order they were written.

``job.success:``, ``job.fail:`` and ``job.completed:`` fire a tick keyed by the
upstream run, ``execute={"retries": N}`` one keyed by the failed run, so each
fires once whichever daemon sees the end first. The ends are read by their
sequence id (``cursor``): no clock decides what is new, so a run ended by a
process whose clock is behind fires its chains like any other.
"""

from __future__ import annotations

from conveyor.definitions.job import Job
from conveyor.execution.rerun import RETRY_TAG
from conveyor.scheduler.cursor import OrderedCursor, StoredCursor
from conveyor.scheduler.firing import Scope, same_partition
from conveyor.scheduler.incremental import IntervalWalk
from conveyor.scheduler.intervals import IntervalEnds
from conveyor.storage.records import RunRecord
from conveyor.storage.runs import RunEnd
from conveyor.storage.states import RunStatus

# Where the daemons keep how far they have read the run ends.
CHAIN_CURSOR = "conveyor/chains"
CHAINS = {
    "job.success": (RunStatus.SUCCESS,),
    "job.fail": (RunStatus.FAILURE,),
    "job.completed": (RunStatus.SUCCESS, RunStatus.FAILURE),
}
# The first daemon of an instance reads the runs that ended this long before it started.
START_MARGIN = 5.0


class Chains:
    """The daemon's step: fire the chains and retries of the runs that ended since the
    last pass, and wake the walks of interval-mode jobs whose runs ended."""

    def __init__(self, scope: Scope, intervals: IntervalEnds, walk: IntervalWalk) -> None:
        self.scope = scope
        self.intervals = intervals
        self.walk = walk
        store = scope.instance.run_store
        self.cursor: StoredCursor[RunEnd] = StoredCursor(
            CHAIN_CURSOR,
            scope.instance.sensor_store,
            OrderedCursor(after=store.ends_after, among=store.ends_among, id_of=_end_id),
            first=lambda: store.last_end_id(before=scope.started - START_MARGIN),
            before=store.last_end_id,
        )

    def __call__(self, now: float) -> None:
        jobs = self.scope.jobs
        watchers: dict[str, list[tuple[Job, str, tuple[RunStatus, ...]]]] = {}
        for job in jobs.values():
            for trigger in job.triggers:
                if trigger.type in CHAINS:
                    watchers.setdefault(trigger.expr, []).append(
                        (job, str(trigger), CHAINS[trigger.type])
                    )
        self.intervals.stale()  # read the runs that ended since, when an interval is asked
        retrying = {name for name, job in jobs.items() if job.execute.retries}
        walking = {n for n, j in jobs.items() if j.incremental_mode == "interval"}
        if not watchers and not retrying and not walking:
            return
        batch = self.cursor.read()
        wanted = [e for e in batch.rows if e.job_name in watchers or e.job_name in retrying]
        runs = self.scope.instance.run_store.get_many(e.run_id for e in wanted)
        for end in batch.rows:
            if end.job_name in walking:
                self.walk.ended(end.job_name)  # its next period may be due
            ended = runs.get(end.run_id)
            if ended is None:
                continue
            for job, name, statuses in watchers.get(ended.job_name, []):
                if ended.status in statuses:
                    assert ended.ended_at is not None
                    self.scope.ticks.add(
                        job,
                        f"{job.name}/{name}@{ended.id}",
                        name,
                        ended.ended_at.timestamp(),
                        tags={"upstream_run": ended.id},
                        interval=self.intervals.interval(job, now),
                        partition=same_partition(job, ended),
                    )
            if ended.job_name in retrying and ended.status is RunStatus.FAILURE:
                self._retry(ended)
        self.scope.ticks.flush()
        self.cursor.commit(batch, now)

    def _retry(self, failed: RunRecord) -> None:
        job = self.scope.jobs[failed.job_name]
        done = int(failed.tags.get(RETRY_TAG, "0"))
        if done >= job.execute.retries:
            return
        assert failed.ended_at is not None
        tags = {**failed.tags, RETRY_TAG: str(done + 1)}
        self.scope.ticks.add(
            job,
            f"{job.name}/retry@{failed.id}",
            "retry",
            failed.ended_at.timestamp(),
            tags=tags,
            parent=failed,
        )


def _end_id(end: RunEnd) -> int:
    return end.id
