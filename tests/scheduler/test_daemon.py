"""The daemon against real storage and real run-worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import load_file
from tests.waiting import wait_until

JOBS = Path(__file__).parent / "jobs.py"


@pytest.fixture
def home_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run workers find the instance through CONVEYOR_HOME, as in production.

    The environment is set before the daemon starts: its run workers inherit
    it from the launch server, which starts with the daemon.
    """
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    monkeypatch.setenv("CONVEYOR_TEST_MARKER", str(tmp_path / "marker"))
    return home


@pytest.fixture
def running_daemon(home_env: Path) -> Iterator[tuple[Daemon, Instance]]:
    instance = Instance.at(home_env)
    daemon = Daemon(load_file(JOBS), instance)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    yield daemon, instance
    stop.set()
    thread.join(timeout=10)
    wait_until(lambda: not instance.runs(status=["starting", "running"]), 30, "runs to end")
    daemon.reap(wait=10)
    assert daemon._children == []
    instance.close()


def _queue(instance: Instance, job_name: str, n: int = 1) -> list[str]:
    ws = load_file(JOBS)
    job = ws.job(job_name)
    return [
        instance.run_store.create(
            job_name=job.name,
            job_version=job.version,
            status=RunStatus.QUEUED,
            origin={**ws.origin, "job": job.name},
        ).id
        for _ in range(n)
    ]


def test_concurrency_two_never_runs_three(running_daemon: tuple[Daemon, Instance]) -> None:
    _, instance = running_daemon
    ids = _queue(instance, "limited", 20)
    wait_until(
        lambda: all(instance.run(r).status.is_terminal for r in ids), 120, "20 runs to finish"
    )
    runs = [instance.run(r) for r in ids]
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    events = sorted(
        [(r.started_at, 1) for r in runs] + [(r.ended_at, -1) for r in runs],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    assert instance.lease_store.held("job:limited") == []


def test_each_upstream_success_chains_exactly_one_run(
    running_daemon: tuple[Daemon, Instance],
) -> None:
    """How soon the chained run starts is measured by benchmarks/scheduler.py (W6)."""
    daemon, instance = running_daemon
    passes: list[float] = []
    daemon.steps.append(("count passes", passes.append))
    for _ in range(5):
        [up] = _queue(instance, "upstream")
        wait_until(lambda up=up: instance.run(up).status.is_terminal, 60, "upstream to end")
        assert instance.run(up).status is RunStatus.SUCCESS

        def chained(up: str = up) -> bool:
            return any(r.tags.get("upstream_run") == up for r in instance.runs("downstream"))

        wait_until(chained, 10, "the chained run")
    # exactly one chained run per upstream success, whatever the passes since
    seen = len(passes)
    wait_until(lambda: len(passes) >= seen + 5, 30, "five more daemon passes")
    downstream = instance.runs("downstream", limit=100)
    assert len(downstream) == 5
    assert len({r.tags.get("upstream_run") for r in downstream}) == 5


def test_a_killed_worker_fails_its_run_frees_its_slot_and_is_retried(
    running_daemon: tuple[Daemon, Instance], tmp_path: Path
) -> None:
    _, instance = running_daemon
    marker = tmp_path / "marker"
    first, second = _queue(instance, "killable", 2)
    wait_until(marker.exists, 30, "the first run to start")
    wait_until(lambda: marker.read_text().strip() != "", 5, "the pid")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(
        lambda: instance.run(first).status is RunStatus.FAILURE, 30, "the killed run to fail"
    )
    assert time.monotonic() - killed_at < 30
    lost = instance.run(first)
    assert lost.error is not None
    assert "killed by SIGKILL" in lost.error
    assert all(t.status != "running" for t in instance.run_details(first).tasks)
    # the slot was released: the next queued run starts and succeeds
    wait_until(lambda: instance.run(second).status is RunStatus.SUCCESS, 60, "the next run")

    # and execute={"retries": 1} queued the failed run again, which succeeds now
    def retried() -> list[object]:
        return [r for r in instance.runs("killable", limit=10) if r.parent_run_id == first]

    wait_until(
        lambda: bool(retried()) and retried()[0].status is RunStatus.SUCCESS,  # type: ignore[attr-defined]
        60,
        "the retry",
    )
    assert len(retried()) == 1


def test_a_run_past_its_execute_timeout_is_stopped(
    running_daemon: tuple[Daemon, Instance],
) -> None:
    _, instance = running_daemon
    [run_id] = _queue(instance, "overdue")
    wait_until(lambda: instance.run(run_id).status is RunStatus.RUNNING, 30, "the run to start")
    started = time.monotonic()
    wait_until(lambda: instance.run(run_id).status.is_terminal, 15, "the run to be stopped")
    assert time.monotonic() - started < 10
    assert instance.run(run_id).status is RunStatus.CANCELED
    events = [e.kind for e in instance.run_details(run_id).events]
    assert "run_timeout" in events


def test_a_chain_fires_for_an_upstream_that_ended_while_no_daemon_ran(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    ws = load_file(JOBS)
    first = Daemon(ws, instance, launch=lambda *_: None)
    first.tick()  # a daemon ran once, and stopped
    up = instance.run_store.create(
        job_name="upstream",
        job_version="v",
        then=RunStatus.RUNNING,
        origin={**ws.origin, "job": "upstream"},
    )
    instance.run_store.set_status(up.id, RunStatus.SUCCESS)
    time.sleep(0.1)
    later = Daemon(ws, instance, clock=lambda: time.time() + 3600, launch=lambda *_: None)
    later.fire_chained(time.time() + 3600)
    chained = [r for r in instance.runs("downstream") if r.tags.get("upstream_run") == up.id]
    assert len(chained) == 1
    later.fire_chained(time.time() + 3600)  # and only once
    assert len([r for r in instance.runs("downstream") if r.tags.get("upstream_run") == up.id]) == 1
    instance.close()
