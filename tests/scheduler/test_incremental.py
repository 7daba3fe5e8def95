"""incremental_mode="interval": the scheduler walks a job's interval, one period per run."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from conveyor import Instance, RunStatus
from conveyor.definitions.intervals import parse_moment
from conveyor.execution.launch import execute_run
from conveyor.scheduler.daemon import Daemon
from conveyor.storage.schema import runs
from conveyor.workspace import Workspace
from tests.scheduler import walking
from tests.waiting import wait_until

WALKING = Path(walking.__file__)


def ts(text: str) -> float:
    return parse_moment(text, "t").timestamp()


def day(n: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)


class Clocked:
    """A daemon on a controllable clock whose launcher runs each run here, at once."""

    def __init__(self, ws: Workspace, instance: Instance, now: str) -> None:
        self.now = ts(now)
        self.instance = instance
        self.daemon = Daemon(ws, instance, clock=lambda: self.now, launch=self.launch)
        self.daemon.started = self.now

    def launch(self, run_id: str, instance: Instance) -> None:
        run = instance.run(run_id)
        execute_run(run_id, self.daemon.jobs[run.job_name], instance=instance)
        # The run ended now by the daemon's clock, as it would with a real one.
        with instance.db.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(ended_at=self.now))

    def passes(self, n: int) -> None:
        for _ in range(n):
            self.daemon.tick()


@pytest.fixture
def ws() -> Iterator[Workspace]:
    walking.FAILING.clear()
    yield Workspace(
        jobs={"walk": walking.walk, "walk_to_an_end": walking.walk_to_an_end},
        origin={"module": walking.__name__},
    )
    walking.FAILING.clear()


def intervals(instance: Instance, job: str) -> list[tuple[datetime | None, RunStatus]]:
    runs = sorted(instance.runs(job, limit=100), key=lambda r: r.created_ts)
    return [(r.interval_start, r.status) for r in runs]


def test_the_scheduler_walks_the_interval_one_period_per_run(
    ws: Workspace, durable: Instance
) -> None:
    clocked = Clocked(ws, durable, "2026-01-06T12:00:00")
    clocked.passes(1)
    # One period at a time: the first pass queued and ran only the first day.
    assert intervals(durable, "walk") == [(day(0), RunStatus.SUCCESS)]
    clocked.passes(10)
    walked = intervals(durable, "walk")
    assert walked == [(day(n), RunStatus.SUCCESS) for n in range(5)]  # Jan 1 to Jan 5
    [latest] = durable.runs("walk", limit=1)
    assert (latest.interval_start, latest.interval_end) == (day(4), day(5))
    assert durable.result(latest.id, "walk") == "2026-01-05"
    # Jan 6 is not over yet; at midnight it is, and it runs once.
    clocked.passes(3)
    assert len(durable.runs("walk", limit=100)) == 5
    clocked.now = ts("2026-01-07T00:00:01")
    clocked.passes(3)
    assert intervals(durable, "walk")[5:] == [(day(5), RunStatus.SUCCESS)]


def test_a_bounded_interval_stops_at_its_end(ws: Workspace, durable: Instance) -> None:
    clocked = Clocked(ws, durable, "2026-02-01T00:00:00")
    clocked.passes(10)
    assert intervals(durable, "walk_to_an_end") == [(day(n), RunStatus.SUCCESS) for n in range(3)]


def test_a_failed_period_is_tried_again_at_the_next_tick_and_later_ones_wait(
    ws: Workspace, durable: Instance
) -> None:
    walking.FAILING.add("2026-01-02")
    clocked = Clocked(ws, durable, "2026-01-04T06:00:00")
    clocked.passes(6)
    assert intervals(durable, "walk") == [(day(0), RunStatus.SUCCESS), (day(1), RunStatus.FAILURE)]
    # The next tick (midnight) tries Jan 2 again; it succeeds now and the walk goes on.
    walking.FAILING.clear()
    clocked.now = ts("2026-01-05T00:00:05")
    clocked.passes(6)
    assert intervals(durable, "walk") == [
        (day(0), RunStatus.SUCCESS),
        (day(1), RunStatus.FAILURE),
        (day(1), RunStatus.SUCCESS),
        (day(2), RunStatus.SUCCESS),
        (day(3), RunStatus.SUCCESS),
    ]
    keys = [t["key"] for t in durable.tick_store.for_job("walk")]
    assert "walk/interval@2026-01-02T00:00:00+00:00#1" in keys


def test_two_daemons_queue_each_period_once(ws: Workspace, durable: Instance) -> None:
    queued: list[str] = []
    daemons = [
        Daemon(ws, durable, clock=lambda: ts("2026-01-04T01:00:00"), launch=lambda *_: None)
        for _ in range(2)
    ]
    for _ in range(3):
        for d in daemons:
            d.tick()
            queued = [r.id for r in durable.runs("walk", limit=100)]
    assert len(queued) == 1  # the first period, waiting for a worker
    durable.run_store.set_status(queued[0], RunStatus.RUNNING)
    durable.run_store.set_status(queued[0], RunStatus.SUCCESS)
    for d in daemons:
        d.tick()
    assert [r.interval_start for r in durable.runs("walk", limit=100)] == [day(1), day(0)]


@pytest.mark.slow
def test_a_daemon_process_queues_each_period_after_the_last_succeeds(tmp_path: Path) -> None:
    hour = 3600
    start = (int(time.time()) // hour - 4) * hour  # four whole hours ago
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "WALK_START": datetime.fromtimestamp(start, UTC).isoformat(),
    }
    env.pop("CONVEYOR_DATABASE_URL", None)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "daemon", str(WALKING)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    instance = Instance.at(tmp_path / "home")
    try:
        wait_until(
            lambda: len(instance.runs("hourly_walk", status="success", limit=10)) >= 4,
            60,
            "four hourly periods to succeed",
            every=0.1,
        )
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    runs = sorted(instance.runs("hourly_walk", limit=10), key=lambda r: r.created_ts)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 4
    assert [r.interval_start.timestamp() for r in runs if r.interval_start] == [
        start + k * hour for k in range(4)
    ]
    for before, after in itertools.pairwise(runs):
        assert before.ended_at is not None
        assert after.created_at >= before.ended_at, "a period was queued before the last ended"
    instance.close()


def test_an_interval_bounds_the_ticks_of_a_job_in_latest_mode(durable: Instance) -> None:
    ws = Workspace(jobs={"bounded": walking.bounded}, origin={"module": walking.__name__})
    clocked = Clocked(ws, durable, "2026-01-03T00:00:01")
    clocked.daemon.started = ts("2026-01-01")
    clocked.passes(2)
    assert durable.runs("bounded") == []  # before the start, nothing fires
    clocked.now = ts("2026-01-06T00:00:01")
    clocked.passes(2)
    # the first run starts at the interval's start, not at the last tick before it
    assert intervals(durable, "bounded") == [(day(4), RunStatus.SUCCESS)]
    clocked.now = ts("2026-01-20T00:00:01")
    clocked.passes(2)
    # after the end: one run for the newest tick within it, its gap closed; then nothing
    [latest, _] = durable.runs("bounded")
    assert (latest.interval_start, latest.interval_end) == (day(5), day(7))
    clocked.now = ts("2026-01-21T00:00:01")
    clocked.passes(2)
    assert len(durable.runs("bounded")) == 2


def test_the_daemon_logs_how_the_runs_it_started_ended(
    ws: Workspace, durable: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    walking.FAILING.add("2026-01-02")
    clocked = Clocked(ws, durable, "2026-01-03T06:00:00")
    with caplog.at_level("INFO", logger="conveyor.daemon"):
        clocked.passes(3)
    lines = [r.getMessage() for r in caplog.records]
    first, second = (r.id[:8] for r in sorted(durable.runs("walk"), key=lambda r: r.created_ts))
    assert f"run {first} of walk starting (interval)" in lines
    assert any(m.startswith(f"run {first} of walk: success in ") for m in lines)
    [failed] = [m for m in lines if m.startswith(f"run {second} of walk: failure in ")]
    assert failed.endswith("RuntimeError: no data for 2026-01-02")


def test_the_walk_waits_while_its_schedule_is_switched_off(ws: Workspace, tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    clocked = Clocked(ws, instance, "2026-01-04T12:00:00")
    clocked.passes(1)
    assert intervals(instance, "walk") == [(day(0), RunStatus.SUCCESS)]
    trigger = str(walking.walk.timed_trigger)
    instance.trigger_states.set_enabled("walk", trigger, False)
    clocked.passes(5)
    assert len(intervals(instance, "walk")) == 1
    instance.trigger_states.set_enabled("walk", trigger, True)
    clocked.passes(5)
    assert intervals(instance, "walk") == [(day(n), RunStatus.SUCCESS) for n in range(3)]
    instance.close()
