"""Backfills: one queued run per missing interval or partition key of a job, each exactly once.

Each run is fired as a tick keyed by the job, the interval's start and the
partition key, so running the same backfill twice, or two at once, never
queues an interval or key twice; the daemon starts the runs within the job's
concurrency, and they wait in the queue across daemon restarts. What a
successful run already covers is skipped. Each backfill is recorded with the
runs it queued (``storage.backfills``), to be listed, watched and canceled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from conveyor.definitions.intervals import Interval, parse_moment
from conveyor.definitions.job import Job
from conveyor.definitions.time_partitions import has_time
from conveyor.errors import ConfigError
from conveyor.scheduler.timing import MAX_PER_PASS, fire_times
from conveyor.storage.instance import Instance

MAX_INTERVALS = 100_000


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill did: the runs queued now, how many were already queued or done,
    the intervals and partition keys it covered, and the id of its record
    (``Instance.backfills``)."""

    queued: list[str]
    skipped: int
    intervals: list[Interval]
    partitions: list[str] = field(default_factory=list)
    backfill_id: str | None = None


def intervals_between(job: Job, start: datetime, end: datetime) -> list[Interval]:
    """The job's periods that lie in ``[start, end]``, by its schedule or ``every:`` trigger."""
    timed = job.timed_trigger
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
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    partitions: Sequence[str] | None = None,
    instance: Instance | None = None,
    origin: dict[str, Any] | None = None,
    launched_by: str = "backfill",
) -> BackfillResult:
    """Queue one run per missing interval, partition key, or both, of ``job``.

    With ``start`` and ``end``, one run per period of the job's schedule
    between them (the job's ``interval=`` supplies them when not given). A
    job with ``partitions=`` gets one run per key (``partitions`` picks some),
    for each period when there are periods. Intervals and keys that a
    successful run already covers are skipped. The scheduler daemon starts
    the runs, within the job's concurrency. Each run records ``launched_by``:
    who asked for the backfill (the server passes the user), else ``backfill``.
    """
    from conveyor.execution.launch import default_origin

    inst = instance if instance is not None else Instance.default()
    keys = _keys(job, partitions)
    intervals: list[Interval | None] = [None]
    if has_time(job.partitions) and (start is not None or end is not None):
        # Time partitions are their own periods: the span picks keys, not intervals.
        assert job.partitions is not None
        span = set(job.partitions.keys_between(start, end, f"backfill of {job.name!r}"))
        keys = [k for k in keys if k in span]
        if not keys:
            raise ConfigError(
                f"backfill of {job.name!r}: no complete partition of {job.partitions!r} starts "
                f"between {start} and {end}; widen the span"
            )
    elif start is not None or end is not None or job.partitions is None:
        begin, finish = _span(job, start, end)
        intervals = list(intervals_between(job, begin, finish))
    if len(intervals) * len(keys) > MAX_INTERVALS:
        raise ConfigError(
            f"backfill of {job.name!r}: {len(intervals)} intervals x {len(keys)} partitions is "
            f"more than {MAX_INTERVALS} runs; backfill a shorter span or fewer partitions"
        )
    where = {**(origin or default_origin(job)), "job": job.name}
    queued: list[str] = []
    skipped = 0
    for key in keys:
        done = _done(inst, job, intervals, key)
        for interval in intervals:
            at = interval.start.timestamp() if interval is not None else time.time()
            if (interval.start.timestamp() if interval is not None else None) in done:
                skipped += 1
                continue
            rid = inst.tick_store.fire(
                f"{job.name}/backfill@{_tick_suffix(interval, key)}",
                job_name=job.name,
                trigger="backfill",
                tick_at=at,
                run={
                    "job_version": job.version,
                    "tags": {**job.run_tags, "backfill": "true"},
                    "origin": where,
                    "interval": None
                    if interval is None
                    else (interval.start.timestamp(), interval.end.timestamp()),
                    "partition": key,
                    "launched_by": launched_by,
                },
            )
            if rid is None:
                skipped += 1
            else:
                queued.append(rid)
    covered = [i for i in intervals if i is not None]
    chosen = [k for k in keys if k is not None]
    spec = {
        "start": covered[0].start.isoformat() if covered else None,
        "end": covered[-1].end.isoformat() if covered else None,
        "partitions": list(partitions) if partitions is not None else None,
        "intervals": len(covered),
        "partition_count": len(chosen),
        "queued": len(queued),
        "skipped": skipped,
    }
    bid = inst.backfills.create(job.name, spec, queued)
    return BackfillResult(
        queued=queued, skipped=skipped, intervals=covered, partitions=chosen, backfill_id=bid
    )


def _keys(job: Job, partitions: Sequence[str] | None) -> list[str | None]:
    """The partition keys to backfill: the chosen ones, every key, or none."""
    if partitions is None:
        return list(job.partitions) if job.partitions is not None else [None]
    if job.partitions is None:
        raise ConfigError(
            f"backfill: job {job.name!r} has no partitions; leave out the partition keys, or "
            f"give the job partitions=StaticPartitions([...])"
        )
    if isinstance(partitions, str) or not partitions:
        raise ConfigError(f"backfill of {job.name!r}: give a list of partition keys")
    return [job.partitions.check(k, f"backfill of {job.name!r}") for k in dict.fromkeys(partitions)]


def _span(
    job: Job, start: datetime | str | None, end: datetime | str | None
) -> tuple[datetime, datetime]:
    """The backfill's start and end: as given, else the job's ``interval=`` (its end, or now)."""
    if job.interval is None and (start is None or end is None):
        raise ConfigError(
            f"backfill of {job.name!r}: give a start and an end (--start and --end), since the "
            f"job has no interval= to take them from"
        )
    begin = parse_moment(start, "backfill start") if start is not None else None
    finish = parse_moment(end, "backfill end") if end is not None else None
    if job.interval is not None:
        begin = begin or job.interval.start
        finish = finish or job.interval.end or datetime.now(UTC)
    assert begin is not None
    assert finish is not None
    return begin, finish


def _done(
    inst: Instance, job: Job, intervals: list[Interval | None], key: str | None
) -> set[float | None]:
    """Which of the intervals (``None``: the partition as a whole) a successful run covers."""
    if intervals == [None]:
        assert key is not None
        return {None} if inst.run_store.completed_partitions(job.name, [key]) else set()
    starts = [i.start.timestamp() for i in intervals if i is not None]
    return set(inst.run_store.completed_interval_starts(job.name, starts, partition=key))


def _tick_suffix(interval: Interval | None, key: str | None) -> str:
    if interval is None:
        return f"partition:{key}"
    moment = interval.start.astimezone(UTC).isoformat()
    return moment if key is None else f"{moment}#{key}"
