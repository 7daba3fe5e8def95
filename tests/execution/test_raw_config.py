"""Dagster's untyped ``config: dict``: a task or job body takes its config as a plain dict."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Config, RunConfig, job, task, workflow
from conveyor.errors import ConfigError, DefinitionError


@task
def configurable_op(config: dict) -> Any:  # type: ignore[type-arg]
    return config["value"]


@workflow(config=RunConfig(ops={"configurable_op": {"config": {"value": 42}}}))
def configured_job() -> None:
    configurable_op()


def test_a_dict_config_comes_from_the_default_and_the_run() -> None:
    assert configured_job.run().output("configurable_op") == 42
    given = {"tasks": {"configurable_op": {"config": {"value": [1, 2]}}}}
    assert configured_job.run(given).output("configurable_op") == [1, 2]


def test_a_job_body_takes_a_dict_config() -> None:
    @job
    def body(config: dict[str, int]) -> int:
        return config["n"] * 2

    assert body.run({"config": {"n": 4}}).outputs == {"body": 8}


def test_the_dict_is_a_copy_of_what_was_given() -> None:
    seen: list[object] = []

    @task
    def keep(config: dict) -> None:  # type: ignore[type-arg]
        seen.append(config)

    @workflow
    def flow() -> None:
        keep()

    flow.run({"tasks": {"keep": {"config": {"a": 1, "nested": {"b": 2}}}}})
    assert seen == [{"a": 1, "nested": {"b": 2}}]
    assert type(seen[0]) is dict


def test_a_dict_config_is_not_a_second_config() -> None:
    class Typed(Config):
        x: int = 1

    with pytest.raises(DefinitionError, match="has 2 Config parameters"):

        @task
        def both(config: dict, typed: Typed) -> None:  # type: ignore[type-arg]
            pass


def test_a_dict_config_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="configurable_op"):
        configured_job.run({"tasks": {"configurable_op": {"config": [1, 2]}}})


def test_other_dict_parameters_stay_values() -> None:
    @task
    def source() -> dict[str, int]:
        return {"a": 1}

    @task
    def use(settings: dict) -> int:  # type: ignore[type-arg]
        return settings["a"]

    @workflow
    def flow() -> None:
        use(source())

    assert flow.run().output("use") == 1
