"""``.to_job()``: variants of one workflow or job with their own name, resources, config
and tags (Dagster's ``do_stuff_local`` / ``do_stuff_prod``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from conveyor import Config, DefinitionError, Instance, Resource, job, task, workflow
from conveyor.definitions.config import RunConfig
from conveyor.workspace import load_file


class Server(Resource):
    url: str = "http://local"

    def ping_server(self) -> str:
        return f"pong from {self.url}"


class Greeting(Config):
    word: str = "hello"
    name: str = "world"


@task
def interact_with_server(server: Server) -> str:
    return server.ping_server()


@task
def greet(config: Greeting) -> str:
    return f"{config.word} {config.name}"


@workflow(resources={"server": Server()}, tags={"team": "data"})
def do_stuff() -> None:
    interact_with_server()
    greet()


prod_server = MagicMock()
local_server = MagicMock()
do_stuff_prod = do_stuff.to_job(resource_defs={"server": prod_server}, name="do_stuff_prod")
do_stuff_local = do_stuff.to_job(
    name="do_stuff_local",
    resources={"server": Server(url="http://127.0.0.1")},
    config=RunConfig(tasks={"greet": Greeting(word="hi")}),
    tags={"env": "local"},
)


def test_variants_share_the_graph_and_differ_in_name_and_options() -> None:
    assert do_stuff_prod.name == "do_stuff_prod"
    assert do_stuff_local.name == "do_stuff_local"
    assert do_stuff_prod.graph is do_stuff.graph
    assert do_stuff_local.graph is do_stuff.graph
    assert do_stuff_prod.resources["server"] is prod_server
    assert do_stuff.resources["server"] is not prod_server
    assert do_stuff_local.tags == {"team": "data", "env": "local"}
    assert do_stuff.tags == {"team": "data"}
    assert do_stuff_local.version != do_stuff.version


def test_each_variant_runs_with_its_own_resources_and_config(instance: Instance) -> None:
    prod_server.ping_server.return_value = "pong from prod"
    prod = do_stuff_prod.run(instance=instance)
    assert prod.output("interact_with_server") == "pong from prod"
    assert prod.output("greet") == "hello world"
    local = do_stuff_local.run(instance=instance)
    assert local.output("interact_with_server") == "pong from http://127.0.0.1"
    assert local.output("greet") == "hi world"
    override = do_stuff_local.run(
        {"tasks": {"greet": {"config": {"name": "ann"}}}}, instance=instance
    )
    assert override.output("greet") == "hi ann"
    assert {r.job_name for r in instance.run_store.list()} >= {"do_stuff_prod", "do_stuff_local"}


def test_a_variant_of_a_variant_lays_config_over_config(instance: Instance) -> None:
    again = do_stuff_local.to_job(
        name="again", config={"tasks": {"greet": {"config": {"name": "x"}}}}
    )
    assert again.run(instance=instance).output("greet") == "hi x"


def test_a_variant_with_a_new_resource_key_composes_again(instance: Instance) -> None:
    @task
    def uses_cache(cache: Any) -> str:
        return str(cache)

    @job
    def body(cache: str = "none") -> str:
        return cache

    with_cache = body.to_job(name="with_cache", resources={"cache": "redis"})
    assert "cache" in with_cache.resources
    assert with_cache.run(instance=instance).output("with_cache") == "redis"


def test_both_variants_live_in_one_workspace(tmp_path: Path) -> None:
    path = tmp_path / "variants.py"
    path.write_text(
        textwrap.dedent(
            """
            from conveyor import Resource, task, workflow

            class Server(Resource):
                url: str = "local"

            @task
            def interact_with_server(server: Server) -> str:
                return server.url

            @workflow(resources={"server": Server()})
            def do_stuff() -> None:
                interact_with_server()

            do_stuff_prod = do_stuff.to_job(
                name="do_stuff_prod", resources={"server": Server(url="prod")}
            )
            do_stuff_local = do_stuff.to_job(name="do_stuff_local")
            """
        )
    )
    ws = load_file(path)
    assert set(ws.jobs) == {"do_stuff", "do_stuff_prod", "do_stuff_local"}
    assert ws.job("do_stuff_prod").resources["server"].url == "prod"


def test_bad_variants_are_clear_errors() -> None:
    with pytest.raises(DefinitionError, match="give resources= or its Dagster name resource_defs="):
        do_stuff.to_job(name="x", resources={}, resource_defs={})
    with pytest.raises(DefinitionError, match="resources= must be a dict by key"):
        do_stuff.to_job(name="x", resources=[1])  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="unknown key 'opz'"):
        do_stuff.to_job(name="x", config={"opz": {}})
    with pytest.raises(DefinitionError, match=r"tasks\.nope: no task 'nope'"):
        do_stuff.to_job(name="x", config={"tasks": {"nope": {}}})
    with pytest.raises(DefinitionError, match="unknown option"):
        do_stuff.to_job(name="x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(DefinitionError, match="a job name may hold"):
        do_stuff.to_job(name="do/stuff")
    # A name with spaces is a display name (Datatailr's way); the job name is derived from it.
    spaced = do_stuff.to_job(name="do stuff")
    assert (spaced.name, spaced.display_name) == ("do_stuff", "do stuff")
