"""A daily job for the backfill tests."""

from __future__ import annotations

import time

from conveyor import RunContext, job


@job(schedule="0 0 * * *", catchup="none", execute={"concurrency": 3})
def daily(context: RunContext) -> str:
    time.sleep(0.3)
    assert context.interval is not None
    return f"{context.interval.start.date()}/{context.interval.end.date()}"
