"""In-process timeouts: the task is interrupted, fails with TaskTimeoutError, others go on."""

from __future__ import annotations

import time

import pytest

from conveyor import Instance, RetryPolicy, TaskStatus, TaskTimeoutError, job, task, workflow


@task(timeout=0.5)
def sleeper() -> None:
    time.sleep(30)


@task(timeout="1s")
def swallower() -> None:
    # A task that catches Exception cannot swallow the timeout.
    try:
        time.sleep(30)
    except Exception:
        pass


@task
def independent() -> int:
    return 1


def test_a_sleeping_task_is_stopped(instance: Instance) -> None:
    @workflow
    def wf() -> None:
        sleeper()
        swallower()
        independent()

    started = time.monotonic()
    result = wf.run(instance=instance, raise_on_error=False)
    assert time.monotonic() - started < 5
    assert result.task_status("sleeper") is TaskStatus.FAILURE
    assert result.task_status("swallower") is TaskStatus.FAILURE
    assert result.task_status("independent") is TaskStatus.SUCCESS
    assert isinstance(result.failures["sleeper"], TaskTimeoutError)
    attempt = result.details().task("sleeper").attempts[0]
    assert attempt.error_type == "conveyor.errors.TaskTimeoutError"
    assert attempt.error_message == "task 'sleeper' ran past its timeout of 0.5s and was stopped"


def test_timeouts_are_retried_like_other_errors(instance: Instance) -> None:
    tries: list[int] = []

    @task(timeout=0.3, retry=RetryPolicy(max_retries=1))
    def slow_then_fast() -> str:
        tries.append(1)
        if len(tries) == 1:
            time.sleep(10)
        return "done"

    @workflow
    def wf() -> None:
        slow_then_fast()

    assert wf.run(instance=instance).output("slow_then_fast") == "done"
    assert len(tries) == 2


def test_timeouts_in_submitted_steps(instance: Instance) -> None:
    @task(timeout=0.3)
    def busy() -> None:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            pass

    @job
    def body() -> None:
        busy.submit().result()

    started = time.monotonic()
    with pytest.raises(TaskTimeoutError):
        body.run(instance=instance)
    assert time.monotonic() - started < 5


def test_an_outer_alarm_survives_task_timeouts(instance: Instance) -> None:
    import signal

    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    before = signal.setitimer(signal.ITIMER_REAL, 60)
    try:

        @task(timeout=5)
        def quick() -> int:
            return 2

        @workflow
        def wf() -> None:
            quick()

        assert wf.run(instance=instance).output("quick") == 2
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 55 < remaining <= 60
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, *before)
        signal.signal(signal.SIGALRM, previous)
