"""Resources: injected by name, set up once per run, torn down even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conveyor import ConfigError, Instance, Resource, TaskStatus, job, task, workflow

EVENTS: list[str] = []


class Warehouse(Resource):
    url: str
    schema_: str = "public"

    def setup(self) -> None:
        EVENTS.append(f"setup {self.url}")

    def teardown(self) -> None:
        EVENTS.append("teardown")


class Unused(Resource):
    def setup(self) -> None:
        EVENTS.append("unused setup")


@task
def load(warehouse: Warehouse) -> str:
    EVENTS.append("load")
    return warehouse.url


@task
def fail_after(x: str) -> None:
    raise RuntimeError("late failure")


@workflow(resources={"warehouse": Warehouse(url="db://prod"), "unused": Unused()})
def wf() -> None:
    fail_after(load())


def test_set_up_used_and_torn_down_on_failure(instance: Instance) -> None:
    EVENTS.clear()
    result = wf.run(instance=instance, raise_on_error=False)
    assert result.task_status("load") is TaskStatus.SUCCESS
    assert result.task_status("fail_after") is TaskStatus.FAILURE
    assert EVENTS == ["setup db://prod", "load", "teardown"]


def test_run_config_overrides_resource_fields(instance: Instance) -> None:
    EVENTS.clear()
    result = wf.run(
        {"resources": {"warehouse": {"url": "db://test"}}}, selection="load", instance=instance
    )
    assert result.output("load") == "db://test"
    with pytest.raises(ConfigError, match=r"resources\.warehouse\.port: unknown field"):
        wf.run({"resources": {"warehouse": {"port": 1}}}, instance=instance)


def test_a_failing_setup_fails_the_run_and_runs_nothing(instance: Instance) -> None:
    class Broken(Resource):
        def setup(self) -> None:
            raise ConnectionError("no route")

    @task
    def use(db: Any) -> None:
        raise AssertionError("must not run")

    @workflow(resources={"db": Broken()})
    def broken() -> None:
        use()

    with pytest.raises(ConnectionError, match="no route"):
        broken.run(instance=instance)
    result = broken.run(instance=instance, raise_on_error=False)
    assert result.task_status("use") is TaskStatus.SKIPPED
    assert result.error is not None
    assert "resource 'db' setup" in str(result.error)


def test_context_managers_and_plain_objects(instance: Instance) -> None:
    log: list[str] = []

    @contextmanager
    def session() -> Iterator[str]:
        log.append("open")
        yield "session-1"
        log.append("close")

    @job(resources={"session": session(), "settings": {"region": "eu"}})
    def body(session: str, settings: dict[str, str], context) -> str:  # type: ignore[no-untyped-def]
        assert context.resources["settings"] is settings
        return f"{session} {settings['region']}"

    assert body.run(instance=instance).output("body") == "session-1 eu"
    assert log == ["open", "close"]
