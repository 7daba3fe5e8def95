"""A graph that fans out and joins, on a schedule, and a job chained on its success.

`fan_out` reads a few prices, fans out to three summaries of them and joins
them again: its job page draws the graph. It runs every five minutes;
`digest` runs after each of its successful runs (`job.success`).
"""

from __future__ import annotations

import time

from conveyor import RunContext, Schedule, job, task, workflow


@task
def prices() -> list[float]:
    """A stand-in for reading a feed."""
    time.sleep(0.5)
    return [101.5, 99.2, 100.7, 102.3, 98.9, 100.1]


@task
def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


@task
def high(xs: list[float]) -> float:
    return max(xs)


@task
def low(xs: list[float]) -> float:
    return min(xs)


@task
def combine(mean: float, high: float, low: float) -> dict[str, float]:
    """Join the three branches into one summary."""
    summary = {"mean": round(mean, 2), "range": round(high - low, 2)}
    print(f"mean {summary['mean']}, range {summary['range']}")
    return summary


@workflow(schedule=Schedule(every_minute=5), tags={"team": "quant"})
def fan_out() -> None:
    """Fan out from `prices` to three summaries, and join them in `combine`."""
    xs = prices()
    combine(mean(xs), high(xs), low(xs))


@job(trigger=[fan_out.success], tags={"team": "quant"})
def digest(context: RunContext) -> str:
    """Runs after each successful `fan_out`: a stand-in for mailing its summary."""
    context.log.info("fan_out succeeded; sending the digest")
    return "digest sent"
