"""The workspace of benchmarks/scheduler.py: a job chained on another, and a ticking one."""

from __future__ import annotations

from conveyor import job


@job(execute={"concurrency": None})
def a() -> int:
    return 1


@job(trigger=a.success, execute={"concurrency": None})
def b() -> int:
    return 2


@job(trigger="every:1s", catchup="none", execute={"concurrency": None})
def tick() -> int:
    return 3
