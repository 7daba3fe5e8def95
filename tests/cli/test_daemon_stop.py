"""Stopping ``conveyor daemon`` (issue 10, finding 5): Ctrl-C and SIGTERM say what becomes of
the runs it started, which go on in their own processes, and exit with the documented code."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.storage.records import RunRecord
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until


def _workspace(tmp_path: Path) -> Path:
    """A job whose run holds on until the gate file exists."""
    path = tmp_path / "gated_ws.py"
    path.write_text(
        textwrap.dedent(f"""
        import os, time
        from conveyor import job

        GATE = {str(tmp_path / "gate")!r}

        @job(execute={{"concurrency": None}})
        def gated():
            deadline = time.time() + 120
            while not os.path.exists(GATE) and time.time() < deadline:
                time.sleep(0.05)
            return os.getpid()
    """)
    )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGINT, 130, "stopped by Ctrl-C"), (signal.SIGTERM, 0, "stopped by SIGTERM")],
)
def test_a_stopped_daemon_says_so_and_its_runs_go_on(
    tmp_path: Path, sent: signal.Signals, code: int, said: str
) -> None:
    workspace = _workspace(tmp_path)
    home = tmp_path / "home"
    env = home_env(home)
    gate = tmp_path / "gate"
    queued = conveyor(env, "trigger", str(workspace), "gated")
    assert queued.returncode == 0, queued.stderr
    run_id = queued.stdout.strip()
    log = tmp_path / "daemon.log"
    daemon = _start_daemon(workspace, env, log)
    instance = Instance.at(home)
    try:

        def running() -> RunRecord | None:
            run = instance.run(run_id)
            return run if run.status is RunStatus.RUNNING and run.pid else None

        run = wait_until(running, 60, "the run to start in its worker")
        assert run is not None
        assert run.pid is not None
        worker = run.pid  # as the worker recorded itself
        # A terminal's Ctrl-C goes to every process of the foreground group.
        os.killpg(daemon.pid, sent)
        assert daemon.wait(timeout=60) == code, log.read_text()
        last = log.read_text().strip().splitlines()[-1]
        assert last == (
            f"conveyor daemon: {said}; 1 run it started goes on in its own process "
            f"(the next daemon watches it)"
        )
        assert _alive(worker)
        assert os.getpgid(worker) != daemon.pid
        assert instance.run(run_id).status is RunStatus.RUNNING
        gate.touch()
        wait_until(lambda: instance.run(run_id).status.is_terminal, 60, "the run to end on its own")
        assert instance.run(run_id).status is RunStatus.SUCCESS
    finally:
        gate.touch()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        instance.close()


def test_a_daemon_stopped_with_nothing_running_says_so(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    env = home_env(tmp_path / "home")
    log = tmp_path / "daemon.log"
    daemon = _start_daemon(workspace, env, log)
    try:
        wait_until(lambda: "daemon watching" in log.read_text(), 60, "the daemon to start")
        os.killpg(daemon.pid, signal.SIGINT)
        assert daemon.wait(timeout=60) == 130, log.read_text()
        assert log.read_text().strip().splitlines()[-1] == (
            "conveyor daemon: stopped by Ctrl-C; no run it started is still running"
        )
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def _start_daemon(workspace: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``conveyor daemon`` in a process group of its own, as a terminal gives its foreground
    job, writing to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*CONVEYOR, "daemon", str(workspace)],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
