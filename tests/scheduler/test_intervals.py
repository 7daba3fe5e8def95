"""Run intervals: the rules, the daemon closing gaps, context.interval, backfills."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor import ConfigError, Instance, RunStatus, job
from conveyor.definitions.intervals import Interval, parse_moment
from conveyor.definitions.triggers import Trigger, parse_trigger
from conveyor.execution.launch import execute_run
from conveyor.scheduler.backfill import backfill, intervals_between
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.timing import period_before, previous_instant
from conveyor.workspace import load_file
from tests.commands import conveyor, home_env
from tests.waiting import wait_until

DAILY = Path(__file__).parent / "daily.py"


def ts(text: str) -> float:
    return parse_moment(text, "t").timestamp()


@pytest.mark.parametrize(
    ("trigger", "at", "expected"),
    [
        (parse_trigger("every:10s"), 100.0, (90.0, 100.0)),
        (
            parse_trigger("every:1h"),
            ts("2026-01-01T05:00:00"),
            (ts("2026-01-01T04:00:00"), ts("2026-01-01T05:00:00")),
        ),
        (
            parse_trigger("0 0 * * *"),
            ts("2026-01-02T00:00:00"),
            (ts("2026-01-01T00:00:00"), ts("2026-01-02T00:00:00")),
        ),
        (
            parse_trigger("0 8 * * 1"),
            ts("2026-11-23T08:00:00"),
            (ts("2026-11-16T08:00:00"), ts("2026-11-23T08:00:00")),
        ),
        # Berlin's spring-forward day is 23 hours long
        (
            Trigger("schedule", "0 0 * * *", "Europe/Berlin"),
            ts("2026-03-29T22:00:00"),
            (ts("2026-03-28T23:00:00"), ts("2026-03-29T22:00:00")),
        ),
        (parse_trigger("once:2026-01-01"), 0.0, None),
    ],
)
def test_a_tick_covers_the_period_that_just_elapsed(
    trigger: Trigger, at: float, expected: tuple[float, float] | None
) -> None:
    assert period_before(trigger, at) == expected


def test_previous_instants() -> None:
    assert previous_instant(parse_trigger("every:10s"), 105.0) == 100.0
    assert previous_instant(parse_trigger("every:10s"), 100.0) == 100.0
    hourly = parse_trigger("0 * * * *")
    assert previous_instant(hourly, ts("2026-01-01T05:30:00")) == ts("2026-01-01T05:00:00")
    assert previous_instant(hourly, ts("2026-01-01T05:00:00")) == ts("2026-01-01T05:00:00")


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "start must be"),
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), "time-zone aware"),
    ],
)
def test_bad_intervals(start: datetime, end: datetime, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Interval(start, end)


def test_interval_values() -> None:
    day = Interval.from_timestamps(ts("2026-01-01"), ts("2026-01-02"))
    assert datetime(2026, 1, 1, 12, tzinfo=UTC) in day
    assert datetime(2026, 1, 2, tzinfo=UTC) not in day
    assert str(day) == "[2026-01-01T00:00:00+00:00, 2026-01-02T00:00:00+00:00)"
    with pytest.raises(ConfigError, match="not an ISO date"):
        parse_moment("yesterday", "backfill start")


def test_backfill_intervals_and_bad_backfills() -> None:
    ws = load_file(DAILY)
    daily = ws.job("daily")
    days = intervals_between(
        daily, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    )
    assert len(days) == 30
    assert days[0] == Interval.from_timestamps(ts("2026-10-01"), ts("2026-10-02"))
    assert days[-1].end == datetime(2026, 10, 31, tzinfo=UTC)

    @job
    def untimed() -> None: ...

    with pytest.raises(ConfigError, match="has no schedule or every: trigger"):
        intervals_between(untimed, days[0].start, days[-1].end)
    with pytest.raises(ConfigError, match="must be before end"):
        intervals_between(daily, days[-1].end, days[0].start)


def test_the_daemon_closes_gaps_and_runs_see_their_interval(tmp_path: Path) -> None:
    ws = load_file(DAILY)
    instance = Instance.at(tmp_path / "home")
    clock = {"now": ts("2026-01-10T00:00:01")}
    daemon = Daemon(ws, instance, clock=lambda: clock["now"], launch=lambda *_: None)
    daemon.started = ts("2026-01-09T23:59:00")
    daemon.fire_timed(clock["now"])
    [first] = instance.runs("daily")
    assert (first.interval_start, first.interval_end) == (
        datetime(2026, 1, 9, tzinfo=UTC),
        datetime(2026, 1, 10, tzinfo=UTC),
    )
    # the run executes and sees its interval
    instance.run_store.set_status(first.id, RunStatus.STARTING)
    result = execute_run(first.id, ws.job("daily"), instance=instance)
    assert result.output("daily") == "2026-01-09/2026-01-10"
    # three days of downtime, then a tick: with catchup "none" one run, and its
    # interval starts where the last successful one ended
    clock["now"] = ts("2026-01-13T00:00:01")
    daemon.fire_timed(clock["now"])
    newest = instance.runs("daily")[0]
    assert newest.id != first.id
    assert (newest.interval_start, newest.interval_end) == (
        datetime(2026, 1, 10, tzinfo=UTC),
        datetime(2026, 1, 13, tzinfo=UTC),
    )
    instance.close()


@pytest.mark.slow
def test_a_backfill_of_30_days_runs_each_once_across_a_daemon_kill(tmp_path: Path) -> None:
    env = home_env(tmp_path / "home")
    out = conveyor(
        env, "backfill", str(DAILY), "daily", "--start", "2026-10-01", "--end", "2026-10-31"
    )
    assert out.returncode == 0, out.stderr
    assert "30 intervals, 30 runs queued" in out.stdout
    again = conveyor(
        env, "backfill", str(DAILY), "daily", "--start", "2026-10-01", "--end", "2026-10-31"
    )
    assert "0 runs queued, 30 already queued or done" in again.stdout
    instance = Instance.at(tmp_path / "home")

    def daemon() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "daemon", str(DAILY)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finished() -> int:
        return len(instance.runs("daily", limit=100, status="success"))

    first = daemon()
    try:
        wait_until(lambda: finished() >= 6, 60, "six days to succeed", every=0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert 6 <= finished() < 30
        second = daemon()
        try:
            wait_until(lambda: finished() >= 30, 120, "all 30 days to succeed", every=0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    runs = instance.runs("daily", limit=100)
    assert len(runs) == 30
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    starts = sorted(r.interval_start for r in runs)
    assert starts == [datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
    assert {instance.result(r.id, "daily") for r in runs} == {
        f"{s.date()}/{(s + timedelta(days=1)).date()}" for s in starts
    }
    # never more than 3 at once
    edges = sorted(
        [(r.started_at, 1) for r in runs] + [(r.ended_at, -1) for r in runs],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= 3
    instance.close()


def test_backfill_from_python_queues_each_interval_once(durable: Instance) -> None:
    daily = load_file(DAILY).job("daily")
    first = backfill(daily, "2026-10-01", "2026-10-04", instance=durable)
    assert len(first.queued) == 3
    assert [str(i.start.date()) for i in first.intervals] == [
        "2026-10-01",
        "2026-10-02",
        "2026-10-03",
    ]
    again = backfill(daily, "2026-10-01", "2026-10-05", instance=durable)
    assert (len(again.queued), again.skipped) == (1, 3)
    queued = durable.runs("daily", limit=10)
    assert all(r.status is RunStatus.QUEUED for r in queued)
    assert len(queued) == 4
    assert all(r.tags.get("backfill") == "true" for r in queued)


def test_each_backfill_is_a_record_to_watch_and_cancel(durable: Instance) -> None:
    daily = load_file(DAILY).job("daily")
    first = backfill(daily, "2026-10-01", "2026-10-04", instance=durable)
    assert first.backfill_id is not None
    record = durable.backfills.get(first.backfill_id)
    assert (record.job_name, record.status, record.run_count) == ("daily", "requested", 3)
    assert record.spec["start"] == "2026-10-01T00:00:00+00:00"
    assert record.spec["end"] == "2026-10-04T00:00:00+00:00"
    assert (record.spec["queued"], record.spec["skipped"]) == (3, 0)
    assert [r.id for r in durable.backfills.runs(first.backfill_id)] == first.queued
    assert durable.backfills.progress(first.backfill_id)["queued"] == 3

    again = backfill(daily, "2026-10-01", "2026-10-05", instance=durable)
    assert again.backfill_id is not None
    assert [b.id for b in durable.backfills.list("daily")] == [
        again.backfill_id,
        first.backfill_id,
    ]
    assert durable.backfills.cancel(first.backfill_id) == 3
    assert durable.backfills.get(first.backfill_id).status == "canceled"
    assert durable.backfills.progress(first.backfill_id)["canceled"] == 3
    # the other backfill's run still waits
    assert [r.status for r in durable.backfills.runs(again.backfill_id)] == [RunStatus.QUEUED]


def test_a_manual_trigger_gets_the_last_elapsed_period(tmp_path: Path) -> None:
    env = home_env(tmp_path / "home")

    def midnight() -> datetime:
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    before = midnight()
    out = conveyor(env, "trigger", str(DAILY), "daily")
    assert out.returncode == 0, out.stderr
    instance = Instance.at(tmp_path / "home")
    run = instance.run(out.stdout.strip())
    # the day that just ended (either side of midnight, should the test straddle it)
    assert run.interval_end in (before, midnight())
    assert run.interval_end is not None
    assert run.interval_start == run.interval_end - timedelta(days=1)
    instance.close()
