"""Retries: each attempt is a recorded task run, and the waits follow the policy."""

from __future__ import annotations

import time

from conveyor import Instance, RetryPolicy, TaskStatus, task, workflow


def test_fails_twice_then_succeeds_with_exponential_waits(durable: Instance) -> None:
    calls: list[float] = []

    @task(retry=RetryPolicy(max_retries=3, delay=1, backoff="exponential"))
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError(f"try {len(calls)}")
        return "ok"

    @workflow
    def wf() -> None:
        flaky()

    result = wf.run(instance=durable)
    assert result.success
    assert result.output("flaky") == "ok"
    attempts = [r for r in result.task_runs if r.task_key == "flaky"]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == [
        TaskStatus.UP_FOR_RETRY,
        TaskStatus.UP_FOR_RETRY,
        TaskStatus.SUCCESS,
    ]
    assert [a.retry_wait for a in attempts] == [1.0, 2.0, None]
    assert attempts[0].error_message == "try 1"
    # the waits really happened between the attempts
    assert calls[1] - calls[0] >= 0.95
    assert calls[2] - calls[1] >= 1.95
    retries = [e for e in result.details().events if e.kind == "retry"]
    assert [e.data for e in retries] == [{"wait": 1.0}, {"wait": 2.0}]


def test_the_job_policy_is_the_default_and_retry_on_filters(instance: Instance) -> None:
    seen = {"a": 0, "b": 0}

    @task
    def a() -> None:
        seen["a"] += 1
        raise ConnectionError()

    @task(retry=RetryPolicy(max_retries=2, retry_on=ConnectionError))
    def b() -> None:
        seen["b"] += 1
        raise ValueError()

    @workflow(retry=RetryPolicy(max_retries=1))
    def wf() -> None:
        a()
        b()

    result = wf.run(instance=instance, raise_on_error=False)
    assert seen == {"a": 2, "b": 1}
    assert result.task_status("a") is TaskStatus.FAILURE
    assert result.task_status("b") is TaskStatus.FAILURE


def test_a_task_waiting_to_retry_does_not_block_others(instance: Instance) -> None:
    order: list[str] = []

    @task(retry=RetryPolicy(max_retries=1, delay=0.5))
    def slow_flaky() -> None:
        order.append("flaky")
        if order.count("flaky") == 1:
            raise ConnectionError()

    @task
    def quick() -> None:
        order.append("quick")

    @workflow
    def wf() -> None:
        slow_flaky()
        quick()

    assert wf.run(instance=instance).success
    assert order == ["flaky", "quick", "flaky"]
