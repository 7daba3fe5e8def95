"""In-process timeouts are cooperative: nothing is raised into a running step.

A step past its timeout runs to its end and then fails with
``TaskTimeoutError`` (and is retried like any failure); an ``async`` step is
cancelled at its next ``await``. Stopping a step that does not return is the
process executors' job (tests/execution/executors/).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

import conveyor.execution
from conveyor import Instance, RetryPolicy, TaskStatus, TaskTimeoutError, job, task, workflow


@task(timeout=0.3)
def sleeper() -> str:
    time.sleep(0.8)
    return "late"


@task
def independent() -> int:
    return 1


def test_a_late_step_fails_when_it_returns(instance: Instance) -> None:
    @workflow
    def wf() -> None:
        sleeper()
        independent()

    result = wf.run(instance=instance, raise_on_error=False)
    assert result.task_status("sleeper") is TaskStatus.FAILURE
    assert result.task_status("independent") is TaskStatus.SUCCESS
    assert isinstance(result.failures["sleeper"], TaskTimeoutError)
    attempt = result.details().task("sleeper").attempts[0]
    assert attempt.error_type == "conveyor.errors.TaskTimeoutError"
    assert attempt.error_message is not None
    assert attempt.error_message.startswith("task 'sleeper' ran past its timeout of 0.3s")
    assert "not interrupted" in attempt.error_message


def test_a_late_step_is_not_interrupted(instance: Instance, tmp_path: Path) -> None:
    """What a step does runs to its end (a flush, a lock held): nothing lands in the middle."""
    marks = tmp_path / "marks"

    @task(timeout=0.1)
    def critical() -> None:
        with marks.open("a") as f:
            f.write("begin ")
            time.sleep(0.5)
            f.write("end")

    @workflow
    def wf() -> None:
        critical()

    result = wf.run(instance=instance, raise_on_error=False)
    assert isinstance(result.failures["critical"], TaskTimeoutError)
    assert marks.read_text() == "begin end"


def test_timeouts_are_retried_like_other_errors(instance: Instance) -> None:
    tries: list[int] = []

    @task(timeout=0.3, retry=RetryPolicy(max_retries=1))
    def slow_then_fast() -> str:
        tries.append(1)
        if len(tries) == 1:
            time.sleep(0.5)
        return "done"

    @workflow
    def wf() -> None:
        slow_then_fast()

    assert wf.run(instance=instance).output("slow_then_fast") == "done"
    assert len(tries) == 2


def test_timeouts_in_submitted_steps(instance: Instance) -> None:
    @task(timeout=0.3)
    def busy() -> None:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            pass

    @job
    def body() -> None:
        busy.submit().result()

    with pytest.raises(TaskTimeoutError):
        body.run(instance=instance)


def test_an_async_step_is_cancelled_at_an_await(instance: Instance) -> None:
    @task(timeout=0.3)
    async def hangs() -> None:
        await asyncio.sleep(30)

    @workflow
    def wf() -> None:
        hangs()

    started = time.monotonic()
    result = wf.run(instance=instance, raise_on_error=False)
    assert time.monotonic() - started < 5
    assert isinstance(result.failures["hangs"], TaskTimeoutError)
    assert "cancelled at an await" in str(result.failures["hangs"])


def test_an_outer_alarm_is_left_alone(instance: Instance) -> None:
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


def test_no_exception_is_injected_into_threads() -> None:
    """Raising into another thread (PyThreadState_SetAsyncExc) can land in a database
    flush, a connection checkout or a lock; the engine stops runs between steps instead."""
    root = Path(conveyor.execution.__file__).parent
    users = [
        p.relative_to(root)
        for p in root.rglob("*.py")
        if "SetAsyncExc" in p.read_text() or "pthread_kill" in p.read_text()
    ]
    assert users == []
