"""A job on an every:2s trigger, for the exactly-once test's daemons."""

from __future__ import annotations

from conveyor import task, workflow


@task
def noop() -> int:
    return 1


@workflow(trigger="every:2s", catchup="all", execute={"concurrency": None})
def ticking() -> None:
    noop()
