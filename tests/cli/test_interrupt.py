"""Ctrl-C on a foreground multiprocess run: the run and its tasks end canceled together."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

from conveyor import Instance, RunStatus, TaskStatus
from tests.cli.conftest import CONVEYOR
from tests.waiting import wait_until

WORKSPACE = """
import os
import signal
import time
from pathlib import Path

from conveyor import task, workflow

HERE = Path(__file__).parent


@task
def stubborn():
    # Slow to stop: it notes the SIGTERM its run sends, and goes on until SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: (HERE / "got-term").touch())
    print("started")
    (HERE / "pid").write_text(str(os.getpid()))
    time.sleep(120)


@workflow(executor="multiprocess")
def slowmp():
    stubborn()
"""


def test_ctrl_c_twice_while_the_task_is_stopped(tmp_path: Path) -> None:
    """The second Ctrl-C lands while the run waits for its task's process to stop: the
    task's record still ends with the run, and keeps what the task printed."""
    (tmp_path / "slow.py").write_text(textwrap.dedent(WORKSPACE))
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home")}
    env.pop("CONVEYOR_DATABASE_URL", None)
    with subprocess.Popen(
        [*CONVEYOR, "run", "slow.py", "slowmp"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            wait_until((tmp_path / "pid").exists, 120, "the task to start")
            proc.send_signal(signal.SIGINT)
            wait_until((tmp_path / "got-term").exists, 60, "the run to stop the task")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    home = Instance.at(tmp_path / "home")
    try:
        [run] = home.runs()
        assert run.status is RunStatus.CANCELED
        [task] = home.run_details(run.id).tasks
        assert task.status is TaskStatus.CANCELED
        assert home.logs(run.id, "stubborn") == "started\n"
    finally:
        home.close()
