"""The ETL example, which the README's tour runs (`conveyor run examples/pipelines.py etl`).

Three jobs: `etl`, a workflow whose body composes tasks into a static graph,
on a schedule; `report`, a job whose body is the work and fans out at run
time, chained on `etl`'s success; and `do_stuff`, the smallest workflow there
is. `make run` serves this file with the others of examples/ (one workspace).
"""

from __future__ import annotations

import random

from conveyor import Config, RetryPolicy, RunContext, Schedule, job, task, workflow


class Source(Config):
    """Where `extract` reads from; set it under tasks.extract.config in the run config."""

    rows: int = 1000
    seed: int = 7


@task(retry=RetryPolicy(max_retries=2, delay="1s"))
def extract(config: Source, context: RunContext) -> list[dict[str, float]]:
    """Make `rows` price ticks (a stand-in for reading a feed)."""
    rng = random.Random(config.seed)
    rows = [
        {"symbol": rng.choice("ABCDE"), "price": rng.uniform(10, 100)} for _ in range(config.rows)
    ]
    context.log.info("extracted %d rows", len(rows))
    return rows


@task(memory="256m")
def average_by_symbol(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average price per symbol."""
    totals: dict[str, list[float]] = {}
    for row in rows:
        totals.setdefault(str(row["symbol"]), []).append(row["price"])
    return {symbol: sum(p) / len(p) for symbol, p in sorted(totals.items())}


@task
def spread(averages: dict[str, float]) -> float:
    """Distance between the dearest and the cheapest symbol."""
    return max(averages.values()) - min(averages.values())


@task
def publish(averages: dict[str, float], spread: float) -> str:
    """Print the summary (a stand-in for writing a table)."""
    for symbol, price in averages.items():
        print(f"{symbol}: {price:8.2f}")
    print(f"spread: {spread:.2f}")
    return f"{len(averages)} symbols, spread {spread:.2f}"


@workflow(
    tags={"team": "quant"},
    schedule=Schedule(at_hours=[8], weekdays=["Mon", "Fri"], timezone="Europe/Berlin"),
)
def etl() -> None:
    """Extract ticks, average them per symbol, publish the averages and the spread."""
    averages = average_by_symbol(extract())
    publish(averages, spread(averages))


@task
def score(symbol: str) -> float:
    return sum(ord(c) for c in symbol) / 10


@job(trigger=[etl.success])
def report(context: RunContext, symbols: str = "ABCDE") -> float:
    """Score each symbol in parallel and add the scores up."""
    scores = score.map(list(symbols))
    total = sum(scores.result())
    context.log.info("total score %.1f for %d symbols", total, len(symbols))
    return total


@task
def return_five() -> int:
    return 5


@task
def add_one(x: int) -> int:
    return x + 1


@workflow
def do_stuff() -> None:
    add_one(return_five())
