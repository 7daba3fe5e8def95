"""Jobs whose tasks share a concurrency pool. A module, so that worker processes import it."""

from __future__ import annotations

import time

from conveyor import job, task, workflow


@task(pool="db")
def query(n: int) -> int:
    time.sleep(0.3)
    return n


@task
def free(n: int) -> int:
    return n


@task
def collect(values: list[int]) -> int:
    return sum(values)


@workflow
def six_queries() -> None:
    collect([query(n) for n in range(6)])


@workflow
def two_queries() -> None:
    collect([query(n) for n in range(2)])


@workflow(pool="db")
def pooled_job_with_pooled_tasks() -> None:
    collect([query(n) for n in range(2)] + [free(5)])


@job
def mapped_queries() -> int:
    return sum(query.map(range(4)).result())


@workflow
def mixed() -> None:
    collect([query(1), free(2), free(3)])
