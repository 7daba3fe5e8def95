"""``conveyor logs``: lines of a running task, ``--follow``, and lines of stopped tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus
from tests.cli.conftest import CONVEYOR, Cli
from tests.waiting import wait_until

WORKSPACE = """
import os
import sys
import time
from pathlib import Path

from conveyor import task, workflow

HERE = Path(__file__).parent


@task
def talk():
    print("first line")
    print("to stderr", file=sys.stderr)
    (HERE / "pid").write_text(str(os.getpid()))
    while not (HERE / "gate").exists():
        time.sleep(0.05)
    print("last line")


@workflow
def chat():
    talk()
"""


@pytest.fixture
def chat(tmp_path: Path) -> Path:
    path = tmp_path / "chat.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    return path


def _start(cli: Cli, tmp_path: Path) -> str:
    """Start the chat run in a run worker; returns its id once its task has printed."""
    started = cli("run", "--detach", "chat.py", "chat")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    wait_until((tmp_path / "pid").exists, 120, "the task to print")

    def recorded() -> bool:
        home = Instance.at(tmp_path / "home")
        try:
            return any(t.status is TaskStatus.RUNNING for t in home.run_details(run_id).tasks)
        finally:
            home.close()

    # Recorded running (a run's records are written in batches, a fraction of a second apart).
    wait_until(recorded, 60, "the task to be recorded running")
    return run_id


def _ended(tmp_path: Path, run_id: str) -> RunStatus | None:
    home = Instance.at(tmp_path / "home")
    try:
        status = home.run(run_id).status
    finally:
        home.close()
    return status if status.is_terminal else None


def test_follow_prints_lines_while_the_task_runs_and_stops_when_it_ends(
    cli: Cli, chat: Path, tmp_path: Path
) -> None:
    run_id = _start(cli, tmp_path)
    # Without --follow: what the running task wrote so far.
    now = cli("logs", run_id[:8], "--task", "talk")
    assert now.returncode == 0, now.stderr
    assert now.stdout == "first line\n"
    assert cli("logs", run_id[:8], "--task", "talk", "--stderr").stdout == "to stderr\n"

    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home")}
    env.pop("CONVEYOR_DATABASE_URL", None)
    lines: list[str] = []
    with subprocess.Popen(
        [*CONVEYOR, "logs", run_id[:8], "--task", "talk", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as follow:
        assert follow.stdout is not None
        stdout = follow.stdout
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")))
        reader.start()
        try:
            wait_until(lambda: "first line\n" in lines, 60, "--follow to print the first line")
            # The task still waits for the gate: the line came while it ran.
            assert _ended(tmp_path, run_id) is None
            assert follow.poll() is None
            (tmp_path / "gate").touch()
            assert follow.wait(timeout=60) == 0
        finally:
            (tmp_path / "gate").touch()
            if follow.poll() is None:
                follow.kill()
            reader.join(30)
    assert lines == ["first line\n", "last line\n"]
    assert _ended(tmp_path, run_id) is RunStatus.SUCCESS


def test_follow_needs_a_task(cli: Cli, chat: Path) -> None:
    result = cli("logs", "0123abcd", "--follow")
    assert result.returncode == 2
    assert "--task" in result.stderr


@pytest.mark.parametrize("how", ["cancel", "sigkill"])
def test_in_process_task_stopped_keeps_its_lines(
    how: str, cli: Cli, chat: Path, tmp_path: Path
) -> None:
    run_id = _start(cli, tmp_path)
    if how == "cancel":
        # The task does not return; the run worker's supervisor stops its process.
        assert cli("runs", "cancel", run_id[:8]).returncode == 0
    else:
        os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
    status = wait_until(lambda: _ended(tmp_path, run_id), 120, "the run to end")
    assert status is (RunStatus.CANCELED if how == "cancel" else RunStatus.FAILURE)
    home = Instance.at(tmp_path / "home")
    try:
        [task] = home.run_details(run_id).tasks
        assert task.status is (TaskStatus.CANCELED if how == "cancel" else TaskStatus.FAILURE)
    finally:
        home.close()
    shown = cli("logs", run_id[:8], "--task", "talk")
    assert shown.stdout == "first line\n"
    assert cli("logs", run_id[:8], "--stderr").stdout == "== talk ==\nto stderr\n"
    # --follow of a task that has ended prints its lines and returns.
    assert cli("logs", run_id[:8], "--task", "talk", "--follow").stdout == "first line\n"
