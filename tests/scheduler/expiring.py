"""Jobs for the expiry tests (a workspace file the daemon loads)."""

from __future__ import annotations

from conveyor import job, task, workflow


@task
def one() -> int:
    return 1


@workflow(expire_after="30m")
def expiring() -> None:
    one()


@job(expire_after=60, execute={"concurrency": None})
def quick() -> int:
    return 1


@job
def patient() -> int:
    return 1
