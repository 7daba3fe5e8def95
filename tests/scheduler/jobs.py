"""Jobs for the daemon tests (a workspace file the daemon and its run workers load)."""

from __future__ import annotations

import os
import time

from conveyor import job, task, workflow


@task
def stamp() -> float:
    return time.time()


@job(execute={"concurrency": 2})
def limited() -> float:
    time.sleep(0.3)
    return time.time()


@workflow
def upstream() -> None:
    stamp()


@job(trigger=upstream.success, execute={"concurrency": None})
def downstream() -> float:
    return time.time()


@job(execute={"concurrency": 1, "retries": 1})
def killable(context) -> int:  # type: ignore[no-untyped-def]
    marker = os.environ.get("CONVEYOR_TEST_MARKER", "")
    if marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)  # the test kills this process
    return 1


@job(execute={"timeout": "1s", "concurrency": None})
def overdue() -> int:
    time.sleep(60)
    return 0
