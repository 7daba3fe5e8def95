"""Jobs whose task returns a value that cannot be pickled; a module, so workers import it."""

from __future__ import annotations

import threading

from conveyor import job, task, workflow


@task
def make_lock() -> object:
    return threading.Lock()


@task
def use(lock: object) -> str:
    return type(lock).__name__


@workflow
def lock_graph() -> None:
    use(make_lock())


@job
def lock_body() -> str:
    return use(make_lock())  # type: ignore[no-any-return]
