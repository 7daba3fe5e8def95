"""``@job`` bodies: the body is the work; task calls inside are recorded steps."""

from __future__ import annotations

import threading
import time

import pytest

from conveyor import Instance, RunContext, TaskStatus, job, task

DONE = threading.Event()


@task
def fetch(n: int) -> int:
    print(f"fetching {n}")
    return n


@task
def wait_for_partner(name: str) -> float:
    """In-process, submitted steps run one at a time in the run's thread, in order
    (on the process executors they run in parallel: tests/execution/executors/)."""
    print(f"{name} started")
    PARTNERS.append(name)
    return time.monotonic()


PARTNERS: list[str] = []


@task
def square(x: int) -> int:
    print(f"square {x}")
    return x * x


@job
def pipeline(context: RunContext, limit: int = 100) -> int:
    context.log.info("pipeline for %d items", limit)
    first = fetch(1)
    left = wait_for_partner.submit("left")
    right = wait_for_partner.submit("right")
    left.result()
    right.result()
    squares = square.map(range(limit))
    return first + sum(squares.result())


def test_calls_submits_and_maps_are_recorded_steps(durable: Instance) -> None:
    PARTNERS.clear()
    result = pipeline.run(instance=durable)
    assert result.success
    assert PARTNERS == ["left", "right"]
    assert result.output("pipeline") == 1 + sum(i * i for i in range(100))
    keys = result.task_keys
    assert keys[:4] == ["pipeline", "fetch", "wait_for_partner", "wait_for_partner_2"]
    assert [k for k in keys if k.startswith("square")] == [f"square[{i}]" for i in range(100)]
    details = result.details()
    assert len(details.tasks) == 104
    assert all(t.status is TaskStatus.SUCCESS for t in details.tasks)
    assert pipeline.logs(result.run_id, "square[7]", instance=durable) == "square 7\n"
    assert pipeline.logs(result.run_id, "wait_for_partner_2", instance=durable) == (
        "right started\n"
    )
    assert "pipeline for 100 items" in pipeline.logs(result.run_id, "pipeline", instance=durable)
    assert durable.result(result.run_id, "square[9]") == 81


def test_futures_passed_to_calls_become_dependencies(instance: Instance) -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    @job
    def chained() -> int:
        x = fetch.submit(2)
        y = fetch.submit(3)
        return add(x, b=y)

    result = chained.run(instance=instance)
    assert result.output("chained") == 5
    assert result.details().task("add").depends_on == ["fetch", "fetch_2"]


def test_a_step_error_reaches_the_body_which_decides(instance: Instance) -> None:
    @task
    def bad() -> None:
        raise ValueError("bad step")

    @job
    def handles() -> str:
        try:
            bad()
        except ValueError:
            return "recovered"
        return "unreachable"

    @job
    def lets_it_fail() -> None:
        bad.submit().result()

    ok = handles.run(instance=instance)
    assert ok.success
    assert ok.output("handles") == "recovered"
    assert ok.task_status("bad") is TaskStatus.FAILURE
    with pytest.raises(ValueError, match="bad step"):
        lets_it_fail.run(instance=instance)
    failed = lets_it_fail.run(instance=instance, raise_on_error=False)
    assert failed.task_status("lets_it_fail") is TaskStatus.FAILURE
    assert failed.error is not None
    assert "task 'bad'" in str(failed.error)


def test_job_config_from_the_signature(instance: Instance) -> None:
    from conveyor import ConfigError

    @job
    def sized(limit: int, label: str = "x") -> str:
        return f"{label}{limit}"

    assert sized.run({"config": {"limit": 3}}, instance=instance).output("sized") == "x3"
    with pytest.raises(ConfigError, match=r"config\.limit: field required"):
        sized.run(instance=instance)
    with pytest.raises(ConfigError, match=r"config\.limit: input should be a valid integer"):
        sized.run({"config": {"limit": "many"}}, instance=instance)
    with pytest.raises(ConfigError, match=r"config\.lmit: unknown field"):
        sized.run({"config": {"limit": 1, "lmit": 2}}, instance=instance)


def test_a_step_waiting_on_a_failed_future_is_skipped(instance: Instance) -> None:
    @task
    def bad() -> int:
        raise ValueError("bad step")

    @job
    def body() -> str:
        later = fetch.submit(bad.submit())
        try:
            later.result()
        except ValueError as e:
            return str(e)
        return "unreachable"

    result = body.run(instance=instance)
    assert result.output("body") == "bad step"
    assert result.task_status("bad") is TaskStatus.FAILURE
    assert result.task_status("fetch") is TaskStatus.SKIPPED
