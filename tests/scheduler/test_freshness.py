"""Freshness gates: the rules, bad definitions, and a gated run waiting for its upstream."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor import DefinitionError, Instance, RunStatus, WorkspaceError, job
from conveyor.scheduler.daemon import Daemon, check_references
from conveyor.scheduler.freshness import blocked_by, covers, is_fresh
from conveyor.workspace import Workspace, load_file
from tests.waiting import wait_until

FRESH = Path(__file__).parent / "fresh.py"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _finished(
    instance: Instance, job_name: str, ended: float, interval: tuple[float, float] | None = None
) -> None:
    """Record a successful run of ``job_name`` that ended at ``ended``."""
    from sqlalchemy import update

    from conveyor.storage.schema import runs

    run = instance.run_store.create(job_name=job_name, job_version="v", then=RunStatus.RUNNING)
    instance.run_store.set_status(run.id, RunStatus.SUCCESS)
    values: dict[str, float] = {"ended_at": ended}
    if interval is not None:
        values.update(interval_start=interval[0], interval_end=interval[1])
    with instance.db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == run.id).values(**values))


@job(schedule="0 6 * * *")
def scheduled() -> None: ...


@job(trigger="every:1h")
def hourly() -> None: ...


@job
def on_demand() -> None: ...


def test_is_fresh_by_upstream_kind(durable: Instance) -> None:
    now = ts("2026-01-10T12:00:00")
    assert not is_fresh(durable, on_demand, now)
    _finished(durable, "on_demand", ts("2025-01-01T00:00:00"))
    assert is_fresh(durable, on_demand, now)  # an event upstream: has ever succeeded

    _finished(durable, "scheduled", ts("2026-01-10T05:59:00"))
    assert not is_fresh(durable, scheduled, now)  # before today's 06:00 tick
    _finished(durable, "scheduled", ts("2026-01-10T06:01:00"))
    assert is_fresh(durable, scheduled, now)

    _finished(durable, "hourly", ts("2026-01-10T10:30:00"))
    assert not is_fresh(durable, hourly, now)  # 90 minutes ago, more than its hour
    _finished(durable, "hourly", ts("2026-01-10T11:30:00"))
    assert is_fresh(durable, hourly, now)


def test_matching_interval_freshness(durable: Instance) -> None:
    @job(freshness=[scheduled.is_matching_interval_fresh])
    def downstream() -> None: ...

    day = (ts("2026-01-10T00:00:00"), ts("2026-01-11T00:00:00"))
    waiting = durable.tick_store.fire(
        "d",
        job_name="downstream",
        trigger="manual",
        tick_at=0,
        run={"job_version": "v", "interval": day},
    )
    assert waiting is not None
    run = durable.run(waiting)
    jobs = {"scheduled": scheduled, "downstream": downstream}
    now = ts("2026-01-11T12:00:00")
    _finished(durable, "scheduled", now, (day[0], ts("2026-01-10T12:00:00")))
    gate = blocked_by(durable, run, downstream, jobs, now)
    assert gate is not None
    assert str(gate) == "job.is_matching_interval_fresh:scheduled"
    _finished(durable, "scheduled", now, (ts("2026-01-10T12:00:00"), day[1]))
    assert blocked_by(durable, run, downstream, jobs, now) is None


@pytest.mark.parametrize(
    ("intervals", "covered"),
    [
        ([(0, 10)], True),
        ([(0, 4), (4, 10)], True),
        ([(5, 10), (0, 5)], True),
        ([(0, 4), (5, 10)], False),
        ([(1, 10)], False),
        ([], False),
    ],
)
def test_covers(intervals: list[tuple[float, float]], covered: bool) -> None:
    assert covers(intervals, 0, 10) is covered


def test_bad_freshness_definitions() -> None:
    def body() -> None: ...

    with pytest.raises(DefinitionError, match=re.escape("use an upstream job's .is_fresh")):
        job(freshness=["job.success:on_demand"])(body)
    with pytest.raises(DefinitionError, match="cannot wait for itself"):
        job(name="self_ref", freshness=["job.is_fresh:self_ref"])(body)
    with pytest.raises(DefinitionError, match="refresh='sometimes' must be one of"):
        job(refresh="sometimes")(body)
    lonely = job(freshness=[scheduled.is_fresh])(body)
    with pytest.raises(
        WorkspaceError, match=re.escape("Invalid freshness 'job.is_fresh:scheduled'")
    ):
        check_references(Workspace(jobs={"body": lonely}, origin={"file": "x.py"}))
    chained = job(name="chained", trigger=hourly.success)(body)
    with pytest.raises(WorkspaceError, match=r"Invalid trigger 'job\.success:hourly'.*no job"):
        check_references(Workspace(jobs={"chained": chained}, origin={"file": "x.py"}))


def test_a_gated_run_waits_and_starts_when_the_upstream_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    instance = Instance.at(home)
    ws = load_file(FRESH)
    daemon = Daemon(ws, instance)
    passes: list[float] = []
    daemon.steps.append(("count passes", passes.append))
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()

    def queue(name: str) -> str:
        j = ws.job(name)
        return instance.run_store.create(
            job_name=name,
            job_version=j.version,
            status=RunStatus.QUEUED,
            origin={**ws.origin, "job": name},
        ).id

    try:
        gated = queue("report")
        seen = len(passes)
        wait_until(lambda: len(passes) >= seen + 15, 30, "15 daemon passes")
        assert instance.run(gated).status is RunStatus.QUEUED  # many passes: the gate stays shut
        upstream = queue("source")
        wait_until(
            lambda: instance.run(gated).status is RunStatus.SUCCESS, 30, "the gated run to succeed"
        )
        up, down = instance.run(upstream), instance.run(gated)
        assert up.ended_at is not None
        assert down.started_at is not None
        assert down.started_at >= up.ended_at
    finally:
        stop.set()
        thread.join(timeout=10)
        daemon.reap(wait=10)
        instance.close()
