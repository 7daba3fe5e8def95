"""``fail_after``: a run still running that long after its start fails with an error
naming fail_after, and the tasks it was running are stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conveyor import Instance, RunStatus, TaskStatus
from conveyor.definitions.job import Job
from conveyor.execution.result import RunResult
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.fail_after import FAIL_AFTER_EVENT, fail_late_runs, fail_run
from conveyor.workspace import load_file
from tests.waiting import wait_until

JOBS = Path(__file__).parent / "late_jobs.py"
REASON = "failed: ran past its fail_after of 1s"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where the slow task writes its pid (``marked`` gives it in the run config)."""
    return tmp_path / "pid"


def marked(marker: Path) -> dict[str, Any]:
    return {"tasks": {"slow": {"config": {"path": str(marker)}}}}


@pytest.fixture
def running_daemon(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Daemon, Instance]]:
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    instance = Instance.at(home)
    daemon = Daemon(load_file(JOBS), instance)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    yield daemon, instance
    stop.set()
    thread.join(timeout=10)
    wait_until(lambda: not instance.runs(status=["starting", "running"]), 30, "runs to end")
    daemon.reap(wait=10)
    instance.close()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _task_pid(marker: Path) -> int:
    wait_until(lambda: marker.exists() and marker.read_text().strip() != "", 90, "the task")
    return int(marker.read_text())


def test_a_daemon_run_past_fail_after_fails_and_its_task_is_stopped(
    running_daemon: tuple[Daemon, Instance], marker: Path
) -> None:
    daemon, instance = running_daemon
    job = daemon.workspace.job("late")
    run = instance.run_store.create(
        job_name=job.name,
        job_version=job.version,
        status=RunStatus.QUEUED,
        origin={**daemon.workspace.origin, "job": job.name},
        run_config=marked(marker),
    )
    pid = _task_pid(marker)
    wait_until(lambda: instance.run(run.id).status.is_terminal, 90, "the run to fail")
    ended = instance.run(run.id)
    assert ended.status is RunStatus.FAILURE
    assert ended.error == REASON
    details = instance.run_details(run.id)
    assert [e.kind for e in details.events].count(FAIL_AFTER_EVENT) == 1
    tasks = {t.key: t for t in details.tasks}
    assert tasks["slow"].status is TaskStatus.CANCELED
    assert "fail_after of 1s" in (tasks["slow"].attempts[-1].error_message or "")
    assert tasks["after"].status is TaskStatus.CANCELED
    wait_until(lambda: _gone(pid), 90, "the task's process to be stopped")
    assert instance.lease_store.held("job:late") == []  # its slot was freed with it


def test_a_run_started_with_job_run_is_failed_and_stopped_too(tmp_path: Path, marker: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    ws = load_file(JOBS)
    job: Job = ws.job("late")
    results: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: results.append(
            job.run(marked(marker), instance=instance, raise_on_error=False)
        )
    )
    thread.start()
    pid = _task_pid(marker)
    [run] = instance.runs("late")
    assert run.started_at is not None
    scope = Daemon(ws, instance, launch=lambda *_: None).scope
    assert fail_late_runs(scope, run.started_at.timestamp() + 0.5) == []  # not yet
    assert fail_late_runs(scope, run.started_at.timestamp() + 1.5) == [run.id]
    thread.join(timeout=90)
    assert not thread.is_alive()
    [result] = results
    assert not result.success
    assert instance.run(run.id).status is RunStatus.FAILURE
    assert instance.run(run.id).error == REASON
    wait_until(lambda: _gone(pid), 90, "the task's process to be stopped")
    instance.close()


def test_runs_that_ended_or_are_in_time_are_left_alone(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    ws = load_file(JOBS)
    done = ws.job("in_time").run(instance=instance)
    assert done.success
    run = instance.run(done.run_id)
    assert run.started_at is not None
    assert not fail_run(instance, run.id, 1.0, time.time() + 7200)
    assert instance.run(run.id).status is RunStatus.SUCCESS
    queued = instance.run_store.create(job_name="in_time", job_version="v", status=RunStatus.QUEUED)
    assert not fail_run(instance, queued.id, 1.0, time.time() + 7200)
    running = instance.run_store.create(job_name="in_time", job_version="v", then=RunStatus.RUNNING)
    scope = Daemon(ws, instance, launch=lambda *_: None).scope
    started = instance.run(running.id).started_at
    assert started is not None
    assert fail_late_runs(scope, started.timestamp() + 3599) == []
    assert fail_late_runs(scope, started.timestamp() + 3601) == [running.id]
    assert instance.run(running.id).status is RunStatus.FAILURE
    assert instance.run(running.id).error == "failed: ran past its fail_after of 1h"
    instance.close()
