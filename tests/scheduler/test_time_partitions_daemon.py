"""A schedule on a time-partitioned job runs the period just completed (Dagster's
build_schedule_from_partitioned_job), once per tick, one run per static key of a
MultiPartitions; the runs carry the key, its window and the config made from it."""

from __future__ import annotations

from pathlib import Path

from conveyor import Instance, RunStatus
from conveyor.definitions.intervals import parse_moment
from conveyor.execution.launch import execute_run
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace, load_file

WORKSPACE = """
from conveyor import (
    DailyPartitions, MonthlyPartitions, MultiPartitions, StaticPartitions, job,
    partition_config,
)

DAYS = DailyPartitions(start="2026-01-01", timezone="America/New_York")


@job(
    schedule="0 1 * * *",
    require={"timezone": "America/New_York"},
    partitions=DAYS,
    config=partition_config(lambda key: {"config": {"table": "sales_" + key}}),
)
def nightly(context, table: str = "") -> list[str]:
    start, end = context.partition_window
    return [context.partition_key, start.isoformat(), end.isoformat(), table]


@job(
    schedule="0 1 * * *",
    require={"timezone": "America/New_York"},
    partitions=MultiPartitions({"date": DAYS, "region": StaticPartitions(["us", "eu"])}),
)
def regional(context) -> dict[str, str]:
    return context.partition_keys


@job(schedule="0 0 1 * *", partitions=MonthlyPartitions(start="2026-01-01"))
def monthly(context) -> str:
    return context.partition_key
"""


def workspace(tmp_path: Path) -> Workspace:
    path = tmp_path / "partitioned.py"
    path.write_text(WORKSPACE)
    return load_file(path)


def daemons(ws: Workspace, instance: Instance, now: float, n: int = 2) -> list[Daemon]:
    out = [Daemon(ws, instance, clock=lambda: now, launch=lambda *_: None) for _ in range(n)]
    for d in out:
        d.started = now - 5
    return out


def keys(instance: Instance, job: str) -> list[str]:
    return sorted(r.partition_key or "" for r in instance.runs(job, limit=100))


def test_a_tick_runs_the_latest_complete_period_once(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    instance = Instance.at(tmp_path / "home")
    # 01:00 in New York on 2026-01-03: the day that just ended is 2026-01-02
    now = parse_moment("2026-01-03T06:00:01", "t").timestamp()
    for d in daemons(ws, instance, now):
        d.fire_timed(now)  # two daemons, one tick: one run per key
    assert keys(instance, "nightly") == ["2026-01-02"]
    assert keys(instance, "regional") == ["2026-01-02|eu", "2026-01-02|us"]
    assert keys(instance, "monthly") == []  # no month has ended yet
    [run] = instance.runs("nightly")
    instance.run_store.set_status(run.id, RunStatus.STARTING)
    execute_run(run.id, ws.jobs["nightly"], instance=instance)
    assert instance.run(run.id).status is RunStatus.SUCCESS
    assert instance.result(run.id, "nightly") == [
        "2026-01-02",
        "2026-01-02T00:00:00-05:00",
        "2026-01-03T00:00:00-05:00",
        "sales_2026-01-02",
    ]
    eu = next(r for r in instance.runs("regional") if r.partition_key == "2026-01-02|eu")
    instance.run_store.set_status(eu.id, RunStatus.STARTING)
    execute_run(eu.id, ws.jobs["regional"], instance=instance)
    assert instance.result(eu.id, "regional") == {"date": "2026-01-02", "region": "eu"}
    instance.close()


def test_the_next_tick_runs_the_next_period(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    instance = Instance.at(tmp_path / "home")
    first = parse_moment("2026-02-01T00:00:01", "t").timestamp()
    for d in daemons(ws, instance, first, n=1):
        d.fire_timed(first)
    assert keys(instance, "monthly") == ["2026-01-01"]
    later = parse_moment("2026-03-01T06:00:01", "t").timestamp()
    for d in daemons(ws, instance, later, n=1):
        d.fire_timed(later)
    # catchup="latest": after downtime, one tick fires, for the period just completed
    assert keys(instance, "nightly") == ["2026-02-28"]
    assert keys(instance, "monthly") == ["2026-01-01", "2026-02-01"]
    instance.close()
