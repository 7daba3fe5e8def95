"""Ctrl-C during a run: the run ends canceled, nothing is left pending or running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus, task, workflow
from tests.waiting import wait_until


def test_keyboard_interrupt_cancels_the_run(durable: Instance) -> None:
    @task
    def first() -> int:
        return 1

    @task
    def interrupted(x: int) -> int:
        raise KeyboardInterrupt

    @task
    def later(x: int) -> int:
        return x

    @workflow
    def wf() -> None:
        later(interrupted(first()))

    with pytest.raises(KeyboardInterrupt):
        wf.run(instance=durable)
    [run] = wf.runs(instance=durable)
    assert run.status is RunStatus.CANCELED
    assert run.error == "stopped by the user"
    statuses = {t.key: t.status for t in durable.run_details(run.id).tasks}
    assert statuses == {
        "first": TaskStatus.SUCCESS,
        "interrupted": TaskStatus.CANCELED,
        "later": TaskStatus.CANCELED,
    }


def test_ctrl_c_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        textwrap.dedent("""
        import time
        from conveyor import task, workflow

        @task
        def sleepy():
            print("started", flush=True)
            time.sleep(60)

        @workflow
        def slow():
            sleepy()
    """)
    )
    # faulthandler: a SIGABRT makes the command print every thread's stack (see below).
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home"), "PYTHONFAULTHANDLER": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", "slow.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        home = Instance.at(tmp_path / "home")

        def started() -> bool:
            runs = home.runs()
            return bool(runs) and any(
                t.status is TaskStatus.RUNNING for t in home.run_details(runs[0].id).tasks
            )

        wait_until(started, 30, "the task to start", every=0.1)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, stacks = proc.communicate(timeout=30)
            raise AssertionError(f"running 60 s after Ctrl-C; its threads:\n{stacks}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # and close its pipes
    assert proc.returncode == 130
    assert "interrupted" in err
    [run] = home.runs()
    assert run.status is RunStatus.CANCELED
    home.close()
