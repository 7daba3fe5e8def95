"""Jobs with ``incremental_mode="interval"``: the scheduler walks their interval, period by period.

``@job(schedule="@daily", interval={"start": "2026-01-01", "end": None},
incremental_mode="interval")`` owns its progress in the scheduler: while no
run of the job is queued or running, the oldest period of the interval that
has fully elapsed and has no successful run is queued. Its success lets the
next period start on the next pass, so a job that starts far in the past
catches up by itself, one period after another, then keeps pace with its
schedule. A failed period is tried again at the job's next tick (sooner
with ``execute={"retries": N}``), and the periods after it wait: they are
processed in order. While the job's schedule is switched off
(``storage.trigger_state``) its walk waits.

Each attempt is a tick keyed by the period's start and the number of failed
attempts before it, so two daemons queue it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from conveyor.definitions.job import Job
from conveyor.scheduler.firing import Scope
from conveyor.scheduler.timing import MAX_PER_PASS, fire_times, next_after
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus

ACTIVE = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELING)


@dataclass(frozen=True, slots=True)
class PeriodRun:
    """The run to queue for a period: its tick key, when it is due, and its interval."""

    key: str
    at: float
    interval: tuple[float, float]


def missing_period(
    instance: Instance, job: Job, now: float, since: float | None = None
) -> tuple[float, float] | None:
    """The oldest elapsed period of the job's interval with no successful run.

    ``since``: an instant before which every period is known to be done (a
    cache kept by the caller); the walk starts at the interval's start.
    """
    timed, span = job.timed_trigger, job.interval
    assert timed is not None
    assert span is not None
    until = now if span.end is None else min(now, span.end.timestamp())
    # Periods begin at the trigger's instants, the first at or after the start.
    after = max(span.start.timestamp(), since if since is not None else float("-inf")) - 1e-3
    while True:
        bounds = fire_times(timed, after, until, MAX_PER_PASS)
        if len(bounds) < 2:
            return None
        periods = list(pairwise(bounds))
        done = instance.run_store.completed_interval_starts(job.name, [a for a, _ in periods])
        for a, b in periods:
            if a not in done:
                return (a, b)
        after = bounds[-1] - 1e-3


def next_period_run(
    instance: Instance, job: Job, now: float, walked: dict[str, float]
) -> PeriodRun | None:
    """The period run to queue now for an interval-mode job, if any.

    ``walked`` caches, per job, where the walk found its last missing period
    (all periods before it are done), so a pass does not read the whole past.
    """
    store = instance.run_store
    if store.list(job_name=job.name, status=list(ACTIVE), limit=1):
        return None  # one period at a time
    period = missing_period(instance, job, now, walked.get(job.name))
    if period is None:
        return None
    start, end = period
    walked[job.name] = start
    failed = store.interval_runs(job.name, start, [RunStatus.FAILURE, RunStatus.CANCELED])
    if failed:
        # (never later than now: another machine's clock may run a little ahead)
        last = min(now, max(r.ended_at.timestamp() for r in failed if r.ended_at is not None))
        timed = job.timed_trigger
        assert timed is not None
        if not fire_times(timed, last, now, 1):
            return None  # a failed period is tried again at the next tick
    moment = datetime.fromtimestamp(start, UTC).isoformat()
    return PeriodRun(f"{job.name}/interval@{moment}#{len(failed)}", end, period)


class IntervalWalk:
    """The daemon's step: queue the next missing period of each interval-mode job.

    A job with nothing to queue (a run of it is active, its walk is caught
    up, or a failed period waits for the next tick) is looked at again at
    its next tick, or as soon as one of its runs ends (``ended``, called by
    the chains step), so a quiet pass reads nothing for it.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        # Per job, the start of its oldest missing period (all before are done).
        self.walked: dict[str, float] = {}
        # Per job: nothing to queue before this instant, unless one of its runs ended.
        self.idle: dict[str, float] = {}
        self.woken: set[str] = set()

    def ended(self, job_name: str) -> None:
        """A run of ``job_name`` ended: its next period may be due."""
        self.woken.add(job_name)

    def __call__(self, now: float) -> None:
        scope = self.scope
        switched = scope.trigger_states()
        for job in scope.jobs.values():
            if job.incremental_mode != "interval":
                continue
            timed = job.timed_trigger
            state = None if timed is None else switched.get((job.name, str(timed)))
            if state is not None and not state.enabled:
                # Its schedule is switched off: the walk waits, and goes on when it is on.
                self.idle.pop(job.name, None)
                continue
            woken = job.name in self.woken
            if not woken and now < self.idle.get(job.name, now):
                continue
            nxt = next_period_run(scope.instance, job, now, self.walked)
            self.woken.discard(job.name)
            if nxt is not None:
                scope.ticks.add(job, nxt.key, "interval", nxt.at, interval=nxt.interval)
                self.idle.pop(job.name, None)
            else:
                timed = job.timed_trigger
                assert timed is not None
                self.idle[job.name] = next_after(timed, now) or float("inf")
        scope.ticks.flush()
