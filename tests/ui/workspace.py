"""The workspace the browser tests drive: small jobs, each showing a part of the UI.

``CONVEYOR_UI_DIR`` (set by the tests) is a folder the jobs read markers from, so
that a test decides when a task stops failing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import (
    Config,
    RetryPolicy,
    RunContext,
    RunRequest,
    SensorContext,
    job,
    sensor,
    task,
    workflow,
)


class Source(Config):
    """How many rows `extract` makes, and what to call them."""

    rows: int = 10
    label: str = "demo"


@task(retry=RetryPolicy(max_retries=2, delay="1s"), timeout="5m")
def extract(config: Source) -> list[int]:
    """Make the rows, a batch at a time."""
    for batch in range(3):
        print(f"extracting batch {batch} of {config.label}", flush=True)
        time.sleep(0.5)
    return list(range(config.rows))


@task(retry=RetryPolicy(max_retries=1, delay="0.5s"), memory="256m")
def clean(rows: list[int]) -> list[int]:
    """Fails on its first attempt (to show a retry), then keeps the even rows."""
    marker = Path(os.environ.get("CONVEYOR_UI_DIR", "."), "clean-tried")
    if not marker.exists():
        marker.touch()
        raise RuntimeError("the source was busy; trying again")
    return [r for r in rows if r % 2 == 0]


@task(cpu=2)
def total(rows: list[int]) -> int:
    time.sleep(0.5)
    return sum(rows)


@task(timeout="1m")
def count(rows: list[int]) -> int:
    return len(rows)


@task(pool="warehouse")
def publish(total: int, count: int) -> str:
    print(f"total {total} over {count} rows", flush=True)
    time.sleep(0.5)
    return f"{count} rows, total {total}"


@workflow(tags={"team": "ui"})
def pipeline() -> None:
    """Extract rows, clean them, and publish their total and count."""
    rows = clean(extract())
    publish(total(rows), count(rows))


class Lines(Config):
    count: int = 600
    every: float = 0.1


@task
def chatter(config: Lines) -> int:
    """Print a numbered line every so often."""
    for i in range(config.count):
        print(f"line {i}", flush=True)
        time.sleep(config.every)
    return config.count


@workflow
def chatty() -> None:
    """A long task that writes a line every tenth of a second."""
    chatter()


@task
def prepare() -> int:
    return 41


@task
def fragile(value: int) -> int:
    """Fails until the test writes the marker `fixed`."""
    if not Path(os.environ.get("CONVEYOR_UI_DIR", "."), "fixed").exists():
        raise RuntimeError("the input file is not there yet")
    return value + 1


@workflow
def flaky() -> None:
    """Prepare, then a step that fails until it is fixed."""
    fragile(prepare())


@job(trigger="every:1h")
def hourly(context: RunContext) -> None:
    """Runs every hour."""
    context.log.info("tick")


@job(schedule="0 0 * * *", execute={"concurrency": 2})
def daily(context: RunContext) -> str:
    """One run per day: the day it covers is its interval."""
    print(f"day {context.interval}", flush=True)
    return str(context.interval)


class Loud(Config):
    lines: int = 100_000


@task
def shout(config: Loud) -> int:
    """Print many numbered lines at once."""
    out = [f"row {i:06d} {'x' * 40}" for i in range(config.lines)]
    print("\n".join(out), flush=True)
    return config.lines


@workflow
def loud() -> None:
    """One task with a long log."""
    shout()


@job(partitions=["eu", "us", "asia"])
def regional(context: RunContext, note: str = "") -> str:
    """One run per region."""
    print(f"region {context.partition}: {note}", flush=True)
    return f"{context.partition} {note}".strip()


@task
def score(symbol: str) -> float:
    time.sleep(0.2)
    return sum(ord(c) for c in symbol) / 10


@job
def fan(context: RunContext, symbols: str = "ABCD") -> float:
    """Score each symbol in parallel (tasks made as the body runs) and add them up."""
    total = sum(score.map(list(symbols)).result())
    context.log.info("total %.1f", total)
    return total


@sensor(job=hourly, interval="10m")
def inbox(context: SensorContext) -> list[RunRequest]:
    """Looks for files in the inbox; there never are any here."""
    context.cursor = "empty"
    return []


class Ratio(Config):
    by: int = 0


@task
def numerator() -> int:
    return 84


@task
def divide(value: int, config: Ratio) -> float:
    """Divides by its config's `by`: 0 (the default) fails."""
    return value / config.by


@workflow
def ratio() -> None:
    """A step whose config decides whether it fails."""
    divide(numerator())
