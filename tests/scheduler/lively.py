"""Jobs for the liveness tests: each reports its process ids and times in a ledger.

The ledger (``CONVEYOR_TEST_LEDGER``) gets one line per event, written in one
``O_APPEND`` write: ``event run_id pid parent_pid time``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time

from conveyor import job, task, workflow


def note(event: str, run_id: str) -> None:
    line = f"{event} {run_id} {os.getpid()} {os.getppid()} {time.time():.6f}\n"
    fd = os.open(os.environ["CONVEYOR_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@job(execute={"concurrency": 1})
def gil_holder(context) -> int:  # type: ignore[no-untyped-def]
    """Holds the GIL in one C call (libc's sleep through PyDLL keeps it)."""
    note("start", context.run_id)
    ctypes.PyDLL(None).sleep(int(os.environ.get("CONVEYOR_TEST_HOLD", "30")))
    note("end", context.run_id)
    return 1


@job(execute={"concurrency": 1})
def paced(context) -> int:  # type: ignore[no-untyped-def]
    """Works for a few seconds in small steps, as a job that can be paused."""
    note("start", context.run_id)
    for _ in range(30):
        time.sleep(0.1)
    note("end", context.run_id)
    return 1


@task
def hold(n: int) -> None:
    """Starts a subprocess and reports both, then waits to be killed."""
    child = subprocess.Popen(["sleep", "120"])
    note(f"task{n}:{child.pid}", "-")
    time.sleep(120)


@workflow(executor="multiprocess")
def tree() -> None:
    hold(1)
    hold(2)


@job(execute={"concurrency": None})
def sleeper(context) -> int:  # type: ignore[no-untyped-def]
    note("start", context.run_id)
    time.sleep(120)
    return 1


@job(execute={"concurrency": None, "timeout": "2s"})
def overdue(context) -> int:  # type: ignore[no-untyped-def]
    note("start", context.run_id)
    time.sleep(120)
    return 1
