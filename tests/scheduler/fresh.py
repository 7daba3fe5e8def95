"""Jobs with a freshness gate, for the daemon test."""

from __future__ import annotations

from conveyor import job


@job(execute={"concurrency": None})
def source() -> int:
    return 1


@job(freshness=[source.is_fresh], execute={"concurrency": None})
def report() -> int:
    return 2
