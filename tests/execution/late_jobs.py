"""Jobs for the fail_after tests (a workspace file the daemon and its run workers load)."""

from __future__ import annotations

import os
import time

from conveyor import Config, job, task, workflow


class Marker(Config):
    """Where the task writes its pid (given in the run config: a multiprocess executor's
    worker pool may have started before a test set any environment variable)."""

    path: str = ""


@task
def slow(config: Marker) -> int:
    if config.path:
        with open(config.path, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(120)  # fail_after stops it long before
    return 1


@task
def after(value: int) -> int:
    return value + 1


@workflow(fail_after="1s", executor="multiprocess")
def late() -> None:
    after(slow())


@job(fail_after="1h", execute={"concurrency": None})
def in_time() -> int:
    return 1
