"""Cancelling a running run: it ends canceled within seconds, with no process left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from conveyor import Instance, RunStatus, TaskStatus
from conveyor.errors import RunCanceledError
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from tests.execution.executors import jobs
from tests.waiting import wait_until


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _cancel_when_running(instance: Instance, job_name: str) -> threading.Thread:
    def running_run() -> str | None:
        runs = instance.runs(job_name, limit=1)
        if runs and any(
            t.status is TaskStatus.RUNNING for t in instance.run_details(runs[0].id).tasks
        ):
            return runs[0].id
        return None

    def cancel() -> None:
        run_id = wait_until(running_run, 30, f"a task of {job_name} to run")
        time.sleep(0.3)
        instance.cancel_run(run_id)

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    return thread


def test_cancel_a_running_run(durable: Instance, tmp_path: Path) -> None:
    """On the multiprocess executor a cancel kills the steps' process trees. (In the run's
    process a cancel stops the run between steps: test_both_kinds.py.)"""
    pids = tmp_path / "pids"
    pids.touch()
    canceller = _cancel_when_running(durable, "long_running")
    chosen = MultiprocessExecutor(max_workers=2)
    config = {
        "tasks": {
            k: {"config": {"path": str(pids)}} for k in ("long_task", "long_task_b", "long_task_c")
        }
    }
    started = time.monotonic()
    result = jobs.long_running.run(config, executor=chosen, instance=durable, raise_on_error=False)
    took = time.monotonic() - started
    canceller.join(timeout=5)
    assert result.status is RunStatus.CANCELED
    assert isinstance(result.error, RunCanceledError)
    assert took < 10  # about 1 s to notice, plus stopping the processes
    run = durable.run(result.run_id)
    assert run.status is RunStatus.CANCELED
    statuses = [t.status for t in durable.run_details(result.run_id).tasks]
    assert TaskStatus.RUNNING not in statuses
    assert TaskStatus.PENDING not in statuses
    assert TaskStatus.CANCELED in statuses
    for pid in (int(p) for p in pids.read_text().split()):
        assert _gone(pid)
    with pytest.raises(RunCanceledError):
        raise result.error


def test_cancel_a_queued_run_and_an_ended_one(instance: Instance) -> None:
    queued = instance.run_store.create(job_name="j", job_version="v", status=RunStatus.QUEUED)
    assert instance.cancel_run(queued.id) is RunStatus.CANCELED
    done = instance.run_store.create(job_name="j", job_version="v", then=RunStatus.RUNNING)
    instance.run_store.set_status(done.id, RunStatus.SUCCESS)
    assert instance.cancel_run(done.id) is RunStatus.SUCCESS


def test_detached_run_cancelled_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "slow_ws.py").write_text(
        textwrap.dedent(f"""
        import os, time
        from conveyor import task, workflow

        @task
        def sleepy(n):
            with open({str(tmp_path / "pids")!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(120)

        @workflow
        def slow():
            sleepy(1)
            sleepy(2)
    """)
    )
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home")}
    env.pop("CONVEYOR_DATABASE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    started = cli("run", "slow_ws.py", "--detach", "--executor", "multiprocess")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert len(run_id) == 32
    home = Instance.at(tmp_path / "home")

    def both_running() -> bool:
        tasks = home.run_details(run_id).tasks
        running = sum(t.status is TaskStatus.RUNNING for t in tasks)
        return running == 2 and (tmp_path / "pids").exists()

    try:
        wait_until(both_running, 30, "both tasks of the detached run to start", every=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}: {cli('runs', 'show', run_id).stdout}") from None
    run = home.run(run_id)
    assert run.heartbeat_at is not None or home.run(run_id).status is RunStatus.RUNNING
    # How fast is the benchmarks' question; here, that the command waits for the end and says so.
    cancelled = cli("runs", "cancel", run_id[:8])
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip().endswith("canceled")
    shown = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert shown["status"] == "canceled"
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    wait_until(lambda: all(_gone(p) for p in pids), 30, "the tasks' processes to end", every=0.1)
    home.close()
