"""Runs of workflows that call workflows: config nested or dotted, selection, results,
rerun from failure, subgraph resources and a workflow with inputs run alone."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import (
    Config,
    ConfigError,
    ExecutionError,
    Instance,
    RunStatus,
    SelectionError,
    TaskStatus,
    task,
    workflow,
)


class Limit(Config):
    rows: int = 2


broken = {"load": False}


@task
def extract(config: Limit) -> list[int]:
    return list(range(config.rows))


@task
def double(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task
def load(rows: list[int], store: list[Any]) -> int:
    if broken["load"]:
        raise RuntimeError("the store is down")
    store.append(rows)
    return len(rows)


@workflow(config={"tasks": {"extract": {"config": {"rows": 3}}}})
def prepare() -> Any:
    return double(extract())


@workflow
def scale(rows: Any) -> Any:
    return double(rows)


@workflow(resources={"store": []})
def etl() -> None:
    load(scale(prepare()))


def test_results_by_dotted_key_and_the_subgraph_default(instance: Instance) -> None:
    result = etl.run(instance=instance)
    assert result.status is RunStatus.SUCCESS
    assert result.output("prepare.extract") == [0, 1, 2]
    assert result.output("scale.double") == [0, 4, 8]
    assert result.output("load") == 3
    assert etl.result(result.run_id, "prepare.double", instance=instance) == [0, 2, 4]


@pytest.mark.parametrize(
    "run_config",
    [
        {"tasks": {"prepare": {"tasks": {"extract": {"config": {"rows": 5}}}}}},
        {"tasks": {"prepare.extract": {"config": {"rows": 5}}}},
        {"tasks": {"prepare.extract": Limit(rows=5)}},
    ],
)
def test_config_nested_or_dotted(instance: Instance, run_config: dict[str, Any]) -> None:
    result = etl.run(run_config, instance=instance)
    assert result.output("load") == 5
    stored = instance.run(result.run_id).run_config
    assert stored == {"tasks": {"prepare.extract": {"config": {"rows": 5}}}}


def test_config_errors_name_the_dotted_key(instance: Instance) -> None:
    with pytest.raises(ConfigError, match=r"tasks\.prepare\.extract\.config\.rows: input should"):
        etl.run({"tasks": {"prepare": {"tasks": {"extract": {"config": {"rows": "x"}}}}}})
    with pytest.raises(ConfigError, match=r"tasks\.prepare\.nothing: no task 'prepare\.nothing'"):
        etl.run({"tasks": {"prepare": {"tasks": {"nothing": {"config": {}}}}}})


def test_selection_by_dotted_key(instance: Instance) -> None:
    result = etl.run(selection="prepare.extract+", instance=instance)
    assert set(result.outputs) == {"prepare.extract", "prepare.double"}
    upstream = etl.run(selection="*scale.double", instance=instance)
    assert upstream.output("scale.double") == [0, 4, 8]
    assert "load" not in upstream.outputs
    # A subgraph's key selects all of its tasks.
    whole = etl.run(selection="prepare", instance=instance)
    assert set(whole.outputs) == {"prepare.extract", "prepare.double"}


def test_rerun_from_failure_reuses_the_subgraph(durable: Instance) -> None:
    broken["load"] = True
    try:
        first = etl.run(instance=durable, raise_on_error=False)
    finally:
        broken["load"] = False
    assert first.status is RunStatus.FAILURE
    assert first.task_status("scale.double") is TaskStatus.SUCCESS
    again = etl.rerun(first.run_id, instance=durable)
    assert again.status is RunStatus.SUCCESS
    assert again.task_status("prepare.extract") is TaskStatus.REUSED
    assert again.task_status("scale.double") is TaskStatus.REUSED
    assert again.output("load") == 3


def test_a_variant_swaps_a_subgraph_resource(instance: Instance) -> None:
    mine: list[Any] = []
    variant = etl.to_job(name="etl_mine", resources={"store": mine})
    variant.run(instance=instance)
    assert mine == [[0, 4, 8]]


def test_a_workflow_with_inputs_run_alone(instance: Instance) -> None:
    with pytest.raises(ExecutionError, match="input 'rows' of workflow 'scale' has no value"):
        scale.run(instance=instance)
    fed = scale.run(selection="double", input_values={"rows": [1, 2]}, instance=instance)
    assert fed.output("double") == [2, 4]
    # As Dagster's top-level inputs: the input's value is given, so the input is not run.
    whole = scale.run(input_values={"rows": [3]}, instance=instance)
    assert whole.success
    assert "rows" not in whole.outputs
    assert whole.output("double") == [6]
    with pytest.raises(SelectionError, match="input_values: no task 'row'"):
        scale.run(input_values={"row": [3]}, instance=instance)


def test_multiprocess_runs_the_subgraph(instance: Instance) -> None:
    result = prepare_twice.run(executor="multiprocess", instance=instance)
    assert result.output("prepare_2.double") == [0, 2, 4]


@task
def plus(a: list[int], b: list[int]) -> list[int]:
    return a + b


@workflow
def prepare_twice() -> None:
    plus(prepare(), prepare())
