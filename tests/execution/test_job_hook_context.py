"""A job's ``on_failure`` hook is told which task failed (``context.task_key``)."""

from __future__ import annotations

import time
from typing import Any

from conveyor import Instance, RetryPolicy, TaskTimeoutError, job, task, workflow


def test_a_workflow_failure_hook_names_the_failed_task(instance: Instance) -> None:
    said: list[str] = []
    attempts: list[int] = []

    @task(retry=RetryPolicy(max_retries=2, delay=0.01))
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("feed not ready")
        return "ok"

    @task(timeout=0.05)
    def stuck() -> None:
        time.sleep(0.1)

    def alert(context: Any, error: BaseException) -> None:
        said.append(f"{context.task_key} failed: {type(error).__name__}")

    @workflow(on_failure=alert)
    def resilient() -> None:
        flaky()
        stuck()

    result = resilient.run(instance=instance, raise_on_error=False)
    assert isinstance(result.failures["stuck"], TaskTimeoutError)
    assert said == ["stuck failed: TaskTimeoutError"]


def test_a_job_body_failure_hook_names_the_step_whose_error_it_gets(instance: Instance) -> None:
    seen: list[tuple[str | None, str]] = []

    @task
    def fetch(n: int) -> int:
        if n == 2:
            raise LookupError("no page 2")
        return n

    def alert(context: Any, error: BaseException) -> None:
        seen.append((context.task_key, str(error)))

    @job(on_failure=alert)
    def pages() -> int:
        return fetch(1) + fetch(2)  # type: ignore[no-any-return]

    pages.run(instance=instance, raise_on_error=False)
    assert seen == [("fetch_2", "no page 2")]


def test_a_success_hook_has_no_task_key(instance: Instance) -> None:
    keys: list[str | None] = []

    @task
    def fine() -> int:
        return 1

    @workflow(on_success=lambda context: keys.append(context.task_key))
    def fine_flow() -> None:
        fine()

    fine_flow.run(instance=instance)
    assert keys == [None]
