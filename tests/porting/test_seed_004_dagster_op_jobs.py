"""Seed 004 (Dagster's op jobs: ``@job``, ``@graph`` with ``to_job``, a job's default
config, ``ConfigMapping`` and ``Definitions``), every example written in Conveyor and run.

``@op`` is ``@task``; ``@job`` composing ops is ``@workflow``; ``@graph`` is ``graph``
(the same decorator), whose ``to_job(name=..., resource_defs=...)`` makes the seed's
per-environment variants; ``RunConfig(ops=...)`` and ``@config_mapping`` keep their
names; ``Definitions`` is the explicit ``Workspace``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from conveyor import (
    Config,
    ConfigError,
    Definitions,
    Instance,
    Resource,
    RunConfig,
    RunStatus,
    TaskContext,
    TaskStatus,
    Workspace,
    config_mapping,
    graph,
    task,
    workflow,
)
from conveyor.workspace import load_file

# -- Creating op jobs: the @job decorator ---------------------------------------------------


@task
def return_five() -> int:
    return 5


@task
def add_one(arg: int) -> int:
    return arg + 1


@workflow
def do_stuff() -> None:
    add_one(return_five())


def test_do_stuff_add_one_depends_on_return_five(instance: Instance) -> None:
    assert do_stuff.graph is not None
    assert do_stuff.graph.upstream("add_one") == ("return_five",)
    result = do_stuff.run(instance=instance)
    assert result.output("return_five") == 5
    assert result.output("add_one") == 6


# -- From a graph: one graph, a job per environment ----------------------------------------


class Server(Resource):
    def ping_server(self) -> str:
        return "pong"


@task
def interact_with_server(server: Server) -> None:
    server.ping_server()


# The graph leaves the server to each job: None says "given later" (by to_job or a
# workspace's resources).
@graph(resources={"server": None})
def do_stuff_graph() -> None:
    interact_with_server()


prod_server = MagicMock()
local_server = MagicMock()
prod_job = do_stuff_graph.to_job(resource_defs={"server": prod_server}, name="do_stuff_prod")
local_job = do_stuff_graph.to_job(resource_defs={"server": local_server}, name="do_stuff_local")


def test_graph_to_job_variants_with_mock_resources(instance: Instance) -> None:
    assert (prod_job.name, local_job.name) == ("do_stuff_prod", "do_stuff_local")
    assert prod_job.graph is not None
    assert list(prod_job.graph.nodes) == ["interact_with_server"]
    prod_job.run(instance=instance)
    prod_server.ping_server.assert_called_once_with()
    local_server.ping_server.assert_not_called()
    local_job.run(instance=instance)
    local_server.ping_server.assert_called_once_with()
    real = do_stuff_graph.to_job(resources={"server": Server()}, name="do_stuff_real")
    assert real.run(instance=instance).status is RunStatus.SUCCESS


def test_a_graph_is_also_composed_inside_another_workflow(instance: Instance) -> None:
    @workflow(resources={"server": Server()})
    def twice() -> None:
        do_stuff_graph()
        do_stuff_graph()

    result = twice.run(instance=instance)
    assert result.task_status("do_stuff_graph.interact_with_server") is TaskStatus.SUCCESS
    assert result.task_status("do_stuff_graph_2.interact_with_server") is TaskStatus.SUCCESS


# -- Configuring op jobs: hardcoded configuration ------------------------------------------


class DoSomethingConfig(Config):
    config_param: str


@task
def do_something(context: TaskContext, config: DoSomethingConfig) -> str:
    context.log.info("config_param: " + config.config_param)
    return config.config_param


default_config = RunConfig(ops={"do_something": DoSomethingConfig(config_param="stuff")})


@workflow(config=default_config)
def do_it_all_with_default_config() -> None:
    do_something()


def test_default_config_applies_and_can_be_overridden(instance: Instance) -> None:
    result = do_it_all_with_default_config.run(instance=instance)
    assert result.output("do_something") == "stuff"
    logs = do_it_all_with_default_config.logs(result.run_id, "do_something", instance=instance)
    assert "config_param: stuff" in logs
    other = do_it_all_with_default_config.run(
        RunConfig(ops={"do_something": DoSomethingConfig(config_param="other")}),
        instance=instance,
    )
    assert other.output("do_something") == "other"


# -- Config mapping --------------------------------------------------------------------------


class SimplifiedConfig(Config):
    simplified_param: str


@config_mapping
def simplified_config(val: SimplifiedConfig) -> RunConfig:
    return RunConfig(ops={"do_something": DoSomethingConfig(config_param=val.simplified_param)})


@workflow(config=simplified_config)
def do_it_all_with_simplified_config() -> None:
    do_something()


def test_config_mapping_takes_the_simplified_config(instance: Instance) -> None:
    result = do_it_all_with_simplified_config.run({"simplified_param": "stuff"}, instance=instance)
    assert result.output("do_something") == "stuff"
    typed = do_it_all_with_simplified_config.run(
        SimplifiedConfig(simplified_param="typed"), instance=instance
    )
    assert typed.output("do_something") == "typed"
    with pytest.raises(ConfigError, match="simplified_param: field required"):
        do_it_all_with_simplified_config.run(
            {"ops": {"do_something": {"config": {"config_param": "x"}}}}, instance=instance
        )


# -- Making op jobs available: Definitions ---------------------------------------------------


@workflow
def do_it_all() -> None:
    do_stuff_graph()


def test_definitions_is_the_explicit_workspace(instance: Instance) -> None:
    assert Definitions is Workspace
    defs = Definitions(jobs=[do_it_all], resources={"server": Server()})
    bound = defs.jobs["do_it_all"]
    result = bound.run(instance=instance)
    assert result.task_status("do_stuff_graph.interact_with_server") is TaskStatus.SUCCESS


def test_a_file_with_definitions_serves_only_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "defs_file.py"
    path.write_text(
        textwrap.dedent(
            """
            from conveyor import Definitions, task, workflow

            @task
            def hello() -> str:
                return "hi"

            @workflow
            def do_it_all() -> None:
                hello()

            @workflow
            def not_served() -> None:
                hello()

            defs = Definitions(jobs=[do_it_all])
            """
        )
    )
    ws = load_file(path)
    assert list(ws.jobs) == ["do_it_all"]
