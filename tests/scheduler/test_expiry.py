"""``expire_after``: a queued run not started within it is canceled by the daemon as
expired, exactly once with two daemons, and across daemon restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.expiry import EXPIRED_EVENT, expire_queued_runs, expire_run
from conveyor.scheduler.firing import Scope
from conveyor.storage.records import RunRecord
from conveyor.workspace import Workspace, load_file

JOBS = Path(__file__).parent / "expiring.py"
HALF_HOUR = 1800.0


class Clock:
    """A daemon's clock, set by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def workspace() -> Workspace:
    return load_file(JOBS)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    home = Instance.at(tmp_path / "home")
    yield home
    home.close()


def _queue(instance: Instance, ws: Workspace, job_name: str) -> RunRecord:
    job = ws.job(job_name)
    return instance.run_store.create(
        job_name=job.name,
        job_version=job.version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": job.name},
    )


def _queued_at(run: RunRecord) -> float:
    return run.created_at.timestamp()


def _expired_events(instance: Instance, run_id: str) -> list[str]:
    return [e.message for e in instance.run_details(run_id).events if e.kind == EXPIRED_EVENT]


def test_an_expired_run_is_canceled_before_launching_and_a_fresh_one_starts(
    instance: Instance, workspace: Workspace
) -> None:
    old = _queue(instance, workspace, "expiring")
    new = _queue(instance, workspace, "expiring")
    while _queued_at(new) <= _queued_at(old):  # the same clock reading: queue another
        new = _queue(instance, workspace, "expiring")
    clock = Clock()
    # Past the old run's deadline, before the new one's.
    clock.now = HALF_HOUR + (_queued_at(old) + _queued_at(new)) / 2
    launched: list[str] = []
    daemon = Daemon(workspace, instance, clock=clock, launch=lambda rid, _: launched.append(rid))
    daemon.tick()

    expired = instance.run(old.id)
    assert expired.status is RunStatus.CANCELED
    assert expired.error == "expired: not started within 30m"
    assert expired.started_at is None
    assert _expired_events(instance, old.id) == [
        "expired: not started within 30m of being queued; canceled by the scheduler"
    ]
    assert old.id not in launched
    assert instance.run(new.id).status is RunStatus.STARTING
    assert launched == [new.id]


def test_runs_within_expire_after_and_jobs_without_it_wait(
    instance: Instance, workspace: Workspace
) -> None:
    waiting = _queue(instance, workspace, "expiring")
    forever = _queue(instance, workspace, "patient")
    assert expire_queued_runs(daemon_scope(workspace, instance), _queued_at(waiting) + 1799) == []
    far_later = _queued_at(forever) + 10 * 365 * 86400
    assert expire_queued_runs(daemon_scope(workspace, instance), far_later) == [waiting.id]
    assert instance.run(forever.id).status is RunStatus.QUEUED


def daemon_scope(workspace: Workspace, instance: Instance) -> Scope:
    return Daemon(workspace, instance, launch=lambda *_: None).scope


def test_a_run_a_launcher_took_is_not_expired(instance: Instance, workspace: Workspace) -> None:
    run = _queue(instance, workspace, "quick")
    instance.run_store.set_status(run.id, RunStatus.STARTING)
    assert not expire_run(instance, run.id, 60.0, _queued_at(run) + 3600)
    assert instance.run(run.id).status is RunStatus.STARTING
    assert instance.run(run.id).error is None
    assert _expired_events(instance, run.id) == []


def test_a_run_not_yet_due_is_not_expired_however_it_is_asked(
    instance: Instance, workspace: Workspace
) -> None:
    run = _queue(instance, workspace, "quick")
    assert not expire_run(instance, run.id, 60.0, _queued_at(run) + 59)
    assert instance.run(run.id).status is RunStatus.QUEUED


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_daemons_expire_each_run_exactly_once(
    tmp_path: Path, workspace: Workspace, database: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_server_url") if database == "postgres" else None

    def daemon_instance() -> Instance:
        return Instance.at(tmp_path / "home", database_url=url)

    setup = daemon_instance()
    runs = [_queue(setup, workspace, "quick") for _ in range(30)]
    now = max(_queued_at(r) for r in runs) + 61
    instances = [daemon_instance() for _ in range(2)]
    scopes = [Daemon(workspace, i, launch=lambda *_: None).scope for i in instances]
    canceled: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def expire(n: int) -> None:
        start.wait(timeout=10)
        for _ in range(5):  # each daemon makes several passes over the same runs
            canceled[n] += expire_queued_runs(scopes[n], now)

    threads = [threading.Thread(target=expire, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    ids = {r.id for r in runs}
    # Each run once, by one daemon or the other (a shared database may hold others' runs).
    assert sorted(r for r in canceled[0] + canceled[1] if r in ids) == sorted(ids)
    for r in runs:
        assert setup.run(r.id).status is RunStatus.CANCELED
        assert len(_expired_events(setup, r.id)) == 1
    for i in (setup, *instances):
        i.close()


def test_the_deadline_survives_a_daemon_restart(instance: Instance, workspace: Workspace) -> None:
    run = _queue(instance, workspace, "expiring")
    clock = Clock()
    clock.now = _queued_at(run) + 600
    first = Daemon(workspace, instance, clock=clock, launch=lambda *_: None)
    first.expire_queued(clock.now)
    assert instance.run(run.id).status is RunStatus.QUEUED
    del first  # the daemon stops; the next one knows nothing it knew
    clock.now = _queued_at(run) + HALF_HOUR + 1
    second = Daemon(workspace, instance, clock=clock, launch=lambda *_: None)
    second.expire_queued(clock.now)
    second.expire_queued(clock.now + 5)
    assert instance.run(run.id).status is RunStatus.CANCELED
    assert len(_expired_events(instance, run.id)) == 1


def test_runs_show_gives_the_reason(tmp_path: Path, workspace: Workspace) -> None:
    home = tmp_path / "home"
    instance = Instance.at(home)
    run = _queue(instance, workspace, "expiring")
    expire_run(instance, run.id, HALF_HOUR, _queued_at(run) + HALF_HOUR + 1)
    instance.close()
    env = {**os.environ, "CONVEYOR_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    shown = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "runs", "show", run.id[:8]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "canceled" in shown.stdout
    assert "expired: not started within 30m" in shown.stdout
