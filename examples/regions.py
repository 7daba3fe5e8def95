"""A job split over partitions: each run reports on one region.

Launch it from its job page with a partition picked, or backfill every
region at once (`conveyor backfill examples regional_report`).
"""

from __future__ import annotations

import time

from conveyor import RunContext, StaticPartitions, job

REGIONS = ["us", "eu", "asia"]


@job(partitions=StaticPartitions(REGIONS), execute={"concurrency": None})
def regional_report(context: RunContext) -> str:
    """Report on the region of the run (`context.partition`)."""
    time.sleep(0.5)
    context.log.info("reporting on %s", context.partition)
    return f"report for {context.partition}"
