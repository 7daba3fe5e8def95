"""Whether a run's freshness gates are open: its upstream jobs are fresh enough.

- ``is_fresh`` of a scheduled upstream: its last successful run ended at or
  after its latest cron tick; of an ``every:P`` upstream: it ended less than
  P ago; of any other upstream: it has ever succeeded.
- ``is_matching_interval_fresh``: the upstream's successful intervals cover
  the downstream run's interval (without an interval, as ``is_fresh``).
"""

from __future__ import annotations

from conveyor.definitions.durations import parse_duration
from conveyor.definitions.freshness import FreshnessGate
from conveyor.definitions.job import Job
from conveyor.scheduler.timing import previous_instant
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord


def is_fresh(instance: Instance, upstream: Job, now: float) -> bool:
    last = instance.run_store.last_success_end(upstream.name)
    if last is None:
        return False
    timed = next((t for t in upstream.triggers if t.type in ("schedule", "every")), None)
    if timed is None:
        return True
    if timed.type == "every":
        return now - last < parse_duration(timed.expr)
    return last >= previous_instant(timed, now)


def covers(intervals: list[tuple[float, float]], start: float, end: float) -> bool:
    """Whether the union of ``intervals`` covers ``[start, end)``."""
    reached = start
    for a, b in sorted(intervals):
        if a > reached:
            return False
        reached = max(reached, b)
        if reached >= end:
            return True
    return reached >= end


def blocked_by(
    instance: Instance, run: RunRecord, job: Job, jobs: dict[str, Job], now: float
) -> FreshnessGate | None:
    """The first gate of ``job`` that keeps ``run`` waiting, or ``None`` when all are open."""
    for gate in job.freshness:
        upstream = jobs[gate.upstream]
        if gate.kind == "is_matching_interval_fresh" and run.interval_start and run.interval_end:
            start, end = run.interval_start.timestamp(), run.interval_end.timestamp()
            done = instance.run_store.success_intervals(upstream.name, start, end)
            if not covers(done, start, end):
                return gate
        elif not is_fresh(instance, upstream, now):
            return gate
    return None
