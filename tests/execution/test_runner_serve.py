"""The launch server: a worker it forks that fails before its run's log is open says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.commands import home_env
from tests.waiting import wait_until


def test_a_forked_worker_that_cannot_start_prints_why(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("CONVEYOR_HOME must be a folder")  # Instance.from_env() fails
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "conveyor.execution.runner", "--serve"],
            env=home_env(not_a_folder),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The server reads the run id, forks its worker, and exits at the end of its input.
        server.communicate(b"0123456789abcdef0123456789abcdef\n", timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # The forked worker writes its traceback before it exits; the server does not wait for it.
    text = wait_until(
        lambda: "CONVEYOR_HOME" in log.read_text() and log.read_text(),
        30,
        "the worker's traceback in the server's log",
    )
    assert "Traceback" in text
