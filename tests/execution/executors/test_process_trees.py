"""A run's task processes, and what they start, die with the run's process, however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from tests.waiting import wait_until

# The run's process: two tasks in a two-worker pool. Each writes its pid, its
# parent's pid and the pid of a `sleep 60` it started, then blocks: the first
# in time.sleep, the second in a native call that keeps the GIL (a thread in
# that worker cannot run, so only mechanisms outside Python threads can act).
RUN = textwrap.dedent("""
    import ctypes, os, subprocess, sys, time
    from pathlib import Path

    from conveyor import Instance, task, workflow
    from conveyor.execution.executors.multiprocess import MultiprocessExecutor

    OUT = Path(sys.argv[1])

    @task
    def hold(n: int) -> None:
        child = subprocess.Popen(["sleep", "60"])
        tmp = OUT / f"task-{n}.tmp"
        tmp.write_text(f"{os.getpid()} {os.getppid()} {child.pid}")
        tmp.rename(OUT / f"task-{n}")
        if n == 1:
            time.sleep(60)
        else:
            ctypes.PyDLL(None).sleep(60)

    @workflow
    def two_holds() -> None:
        hold(1)
        hold(2)

    (OUT / "run").write_text(str(os.getpid()))
    two_holds.run(executor=MultiprocessExecutor(max_workers=2), instance=Instance.ephemeral())
""")


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _reported(out: Path) -> list[list[int]] | None:
    """[task pid, its parent's pid, its subprocess's pid] from each task, once both wrote."""
    files = [out / "task-1", out / "task-2"]
    if not (out / "run").exists() or not all(f.exists() for f in files):
        return None
    return [[int(p) for p in f.read_text().split()] for f in files]


def test_killing_the_run_process_kills_its_task_processes_and_their_children(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with open(tmp_path / "run.log", "wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-c", RUN, str(out)], stdout=log, stderr=subprocess.STDOUT
        )
    tracked: list[psutil.Process] = []
    try:
        rows = wait_until(lambda: _reported(out), 60, "both tasks to report their pids")
        run_pid = int((out / "run").read_text())
        assert run_pid == run.pid
        # Processes as objects now, so that a recycled pid is never taken for them.
        tracked = [
            psutil.Process(pid) for task_pid, _, child_pid in rows for pid in (task_pid, child_pid)
        ]
        assert not any(_gone(p) for p in tracked)

        os.kill(run_pid, signal.SIGKILL)
        killed = time.monotonic()
        run.wait(timeout=10)
        wait_until(
            lambda: all(_gone(p) for p in tracked),
            30,
            f"the task processes and their subprocesses {rows} (task, parent, child) to die",
        )
        took = time.monotonic() - killed
        assert took < 3, f"they died {took:.1f}s after the run's process"
    finally:
        run.kill()
        run.wait()
        for p in tracked:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
