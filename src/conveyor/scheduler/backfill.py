"""Backfills: one queued run per missing interval of a job, each exactly once.

Each interval's run is fired as a tick keyed by the job and the interval's
start, so running the same backfill twice, or two at once, never queues an
interval twice; the daemon starts the runs within the job's concurrency, and
they wait in the queue across daemon restarts. Intervals a successful run
already covers are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from conveyor.definitions.intervals import Interval, parse_moment
from conveyor.definitions.job import Job
from conveyor.errors import ConfigError
from conveyor.scheduler.timing import MAX_PER_PASS, fire_times
from conveyor.storage.instance import Instance

MAX_INTERVALS = 100_000


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill did: runs queued now, intervals already queued or done."""

    queued: list[str]
    skipped: int
    intervals: list[Interval]


def intervals_between(job: Job, start: datetime, end: datetime) -> list[Interval]:
    """The job's periods that lie in ``[start, end]``, by its schedule or ``every:`` trigger."""
    timed = next((t for t in job.triggers if t.type in ("schedule", "every")), None)
    if timed is None:
        raise ConfigError(
            f"job {job.name!r} has no schedule or every: trigger, so it has no intervals to "
            f"backfill; give it schedule=... or trigger='every:1d'"
        )
    if not start < end:
        raise ConfigError(
            f"backfill: start {start.isoformat()} must be before end {end.isoformat()}"
        )
    bounds: list[float] = []
    since = start.timestamp() - 1e-3
    while len(bounds) < MAX_INTERVALS:
        batch = fire_times(timed, since, end.timestamp(), MAX_PER_PASS)
        if not batch:
            break
        bounds.extend(batch)
        since = batch[-1]
    return [Interval.from_timestamps(a, b) for a, b in pairwise(bounds)]


def backfill(
    job: Job,
    start: datetime | str,
    end: datetime | str,
    *,
    instance: Instance | None = None,
    origin: dict[str, Any] | None = None,
) -> BackfillResult:
    """Queue one run per missing interval of ``job`` between ``start`` and ``end``.

    The scheduler daemon starts the runs, within the job's concurrency.
    """
    from conveyor.execution.launch import default_origin

    inst = instance if instance is not None else Instance.default()
    begin, finish = parse_moment(start, "backfill start"), parse_moment(end, "backfill end")
    intervals = intervals_between(job, begin, finish)
    done = inst.run_store.completed_interval_starts(
        job.name, [i.start.timestamp() for i in intervals]
    )
    where = {**(origin or default_origin(job)), "job": job.name}
    queued, skipped = [], 0
    for interval in intervals:
        a, b = interval.start.timestamp(), interval.end.timestamp()
        if a in done:
            skipped += 1
            continue
        rid = inst.tick_store.fire(
            f"{job.name}/backfill@{interval.start.astimezone(UTC).isoformat()}",
            job_name=job.name,
            trigger="backfill",
            tick_at=a,
            run={
                "job_version": job.version,
                "tags": {**job.tags, "backfill": "true"},
                "origin": where,
                "interval": (a, b),
            },
        )
        if rid is None:
            skipped += 1
        else:
            queued.append(rid)
    return BackfillResult(queued=queued, skipped=skipped, intervals=intervals)
