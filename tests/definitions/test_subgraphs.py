"""A workflow called inside another workflow's body composes its graph there (Dagster's
``@graph``): prefixed keys, inputs and outputs, config defaults and resources brought in."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import (
    Config,
    ConfigError,
    DefinitionError,
    DuplicateTaskError,
    RunConfig,
    graph,
    task,
    workflow,
)
from conveyor.definitions.config import as_config_dict


class Limit(Config):
    rows: int = 2


@task
def extract(config: Limit) -> list[int]:
    return list(range(config.rows))


@task
def double(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task
def total(rows: list[int]) -> int:
    return sum(rows)


@task
def ping(server: Any) -> str:
    return str(server)


@workflow(config={"tasks": {"extract": {"config": {"rows": 3}}}})
def prepare() -> Any:
    return double(extract())


@graph
def scale(rows: Any) -> Any:
    return {"doubled": double(rows), "again": double(double(rows))}


def test_graph_is_workflow() -> None:
    assert graph is workflow


def test_subgraph_tasks_are_prefixed_and_deduplicated() -> None:
    @workflow
    def outer() -> None:
        total(prepare())
        total(prepare())

    assert list(outer.graph.nodes) == [  # type: ignore[union-attr]
        "prepare.extract",
        "prepare_2.extract",
        "prepare.double",
        "prepare_2.double",
        "total",
        "total_2",
    ]
    assert outer.graph.subgraphs == {"prepare": "prepare", "prepare_2": "prepare"}  # type: ignore[union-attr]
    assert outer.graph.upstream("total") == ("prepare.double",)  # type: ignore[union-attr]
    assert outer.graph.subgraph_of("prepare_2.double") == "prepare_2"  # type: ignore[union-attr]
    assert outer.graph.subgraph_of("total") is None  # type: ignore[union-attr]


def test_inputs_and_a_dict_of_outputs() -> None:
    @workflow
    def outer() -> None:
        out = scale(extract())
        total(out["again"])
        total(out["doubled"])

    g = outer.graph
    assert g is not None
    assert g.upstream("scale.double") == ("extract",)
    assert g.upstream("scale.double_2") == ("extract",)
    assert g.upstream("scale.double_3") == ("scale.double_2",)
    assert g.upstream("total") == ("scale.double_3",)
    assert g.upstream("total_2") == ("scale.double",)


def test_nested_subgraphs_prefix_every_level() -> None:
    @workflow
    def middle() -> Any:
        return scale(prepare())["doubled"]

    @workflow
    def outer() -> None:
        total(middle())

    g = outer.graph
    assert g is not None
    assert "middle.prepare.extract" in g
    assert "middle.scale.double" in g
    assert g.subgraphs == {
        "middle": "middle",
        "middle.prepare": "prepare",
        "middle.scale": "scale",
    }
    assert g.subgraph_of("middle.scale.double") == "middle.scale"
    assert outer.default_config == {"tasks": {"middle.prepare.extract": {"config": {"rows": 3}}}}


def test_subgraph_defaults_are_prefixed_and_the_outer_config_wins() -> None:
    @workflow(config={"tasks": {"prepare_2.extract": {"config": {"rows": 9}}}})
    def outer() -> None:
        total(prepare())
        total(prepare())

    assert outer.default_config == {
        "tasks": {
            "prepare.extract": {"config": {"rows": 3}},
            "prepare_2.extract": {"config": {"rows": 9}},
        }
    }


def test_subgraph_resources_surface_in_the_outer_job() -> None:
    @workflow(resources={"server": "local"})
    def pinger() -> None:
        ping()

    @workflow
    def outer() -> None:
        pinger()

    assert outer.resources == {"server": "local"}

    @workflow(resources={"server": "prod"})
    def overriding() -> None:
        pinger()

    assert overriding.resources == {"server": "prod"}


def test_a_subgraph_resource_serves_the_calls_after_it_not_before() -> None:
    @workflow(resources={"server": "local"})
    def pinger() -> None:
        ping()

    @workflow
    def after() -> None:
        pinger()
        ping()

    assert list(after.graph.nodes) == ["pinger.ping", "ping"]  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match="parameter 'server' has no upstream"):

        @workflow
        def before() -> None:
            ping()
            pinger()


def test_alias_keeps_the_subgraph_prefix() -> None:
    @workflow
    def inner() -> Any:
        return double(extract()).alias("twice")

    @workflow
    def outer() -> None:
        total(inner())

    assert "inner.twice" in outer.graph  # type: ignore[operator]


def test_an_alias_cannot_take_a_subgraph_key() -> None:
    with pytest.raises(DuplicateTaskError, match="already the key of subgraph 'prepare'"):

        @workflow
        def outer() -> None:
            prepare()
            total(extract()).alias("prepare")


def test_a_subgraph_with_wrong_arguments_names_it() -> None:
    with pytest.raises(DefinitionError, match=r"subgraph 'scale': missing a required argument"):

        @workflow
        def outer() -> None:
            scale()

    with pytest.raises(DefinitionError, match=r"subgraph 'prepare': too many positional"):

        @workflow
        def other() -> None:
            prepare(extract())


def test_a_workflow_that_contains_itself_is_refused() -> None:
    registry: dict[str, Any] = {}

    def body() -> None:
        extract()
        if "me" in registry:
            registry["me"]()

    me = workflow(body)
    registry["me"] = me
    with pytest.raises(DefinitionError, match="'body' calls itself"):
        me.to_job(name="again", resources={"server": "x"})


def test_a_workflow_with_inputs_alone_gets_placeholder_inputs() -> None:
    assert scale.graph is not None
    assert list(scale.graph.nodes) == ["rows", "double", "double_2", "double_3"]
    assert scale.graph.upstream("double") == ("rows",)


def test_variadic_workflow_parameters_are_refused() -> None:
    with pytest.raises(DefinitionError, match="inputs are named parameters"):

        @workflow
        def bad(*rows: Any) -> None:
            total(rows)


def test_calling_a_workflow_outside_a_workflow_still_says_how_to_run_it() -> None:
    with pytest.raises(DefinitionError, match=r"run it with prepare.run"):
        prepare()


def test_nested_run_config_flattens_to_dotted_keys() -> None:
    cfg = as_config_dict(
        {
            "tasks": {
                "prepare": {"tasks": {"extract": {"config": {"rows": 5}}}},
                "middle": {"tasks": {"scale": {"tasks": {"double": {"config": {}}}}}},
                "prepare.double": Limit(rows=1),
            }
        },
        "run config",
    )
    assert cfg["tasks"] == {
        "prepare.extract": {"config": {"rows": 5}},
        "middle.scale.double": {"config": {}},
        "prepare.double": {"config": Limit(rows=1)},
    }
    typed = as_config_dict(
        RunConfig(tasks={"prepare": RunConfig(tasks={"extract": Limit(rows=4)})}), "run config"
    )
    assert typed["tasks"] == {"prepare.extract": {"config": Limit(rows=4)}}


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            {"prepare": {"tasks": {}, "config": {}}},
            "tasks.prepare.config: unknown key; a subgraph's entry holds only 'tasks'",
        ),
        ({"prepare": {"tasks": [1]}}, "tasks.prepare.tasks: expected a mapping by task key"),
    ],
)
def test_bad_nested_run_config(tasks: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        as_config_dict({"tasks": tasks}, "run config")
