"""Jobs whose progress the scheduler owns (incremental_mode="interval"), and partitioned jobs."""

from __future__ import annotations

import os

from conveyor import RunContext, StaticPartitions, job

# Days whose run fails, set by the tests (the in-process launcher shares this module).
FAILING: set[str] = set()


@job(
    schedule="@daily",
    interval={"start": "2026-01-01", "end": None},
    incremental_mode="interval",
)
def walk(context: RunContext) -> str:
    assert context.interval is not None
    day = context.interval.start.date().isoformat()
    if day in FAILING:
        raise RuntimeError(f"no data for {day}")
    return day


@job(
    schedule="@daily",
    interval={"start": "2026-01-01", "end": "2026-01-04"},
    incremental_mode="interval",
)
def walk_to_an_end(context: RunContext) -> str:
    assert context.interval is not None
    return context.interval.start.date().isoformat()


# For a daemon in its own process: hourly periods from WALK_START (an ISO time).
@job(
    trigger="every:1h",
    interval={"start": os.environ.get("WALK_START", "2026-01-01"), "end": None},
    incremental_mode="interval",
)
def hourly_walk(context: RunContext) -> str:
    assert context.interval is not None
    return context.interval.start.isoformat()


REGIONS = StaticPartitions(["us", "eu", "asia"])


@job(partitions=REGIONS, execute={"concurrency": None})
def regions(context: RunContext) -> str | None:
    return context.partition


@job(schedule="@daily", partitions=["us", "eu"], catchup="none", execute={"concurrency": None})
def daily_regions(context: RunContext) -> str:
    assert context.interval is not None
    return f"{context.partition}@{context.interval.start.date()}"


@job(trigger=daily_regions.success, partitions=["eu", "us"], execute={"concurrency": None})
def after_regions(context: RunContext) -> str | None:
    return context.partition


@job(schedule="@daily", interval={"start": "2026-01-05", "end": "2026-01-08"})
def bounded(context: RunContext) -> str:
    assert context.interval is not None
    return str(context.interval)
