"""Typed run config: ``RunConfig(tasks=..., resources=...)`` and ``Config`` instances
wherever a run config dict goes, and a job's default ``config=`` under a run's own."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import SecretStr

from conveyor import Config, ConfigError, DefinitionError, Instance, Resource, job, task, workflow
from conveyor.definitions.config import RunConfig, shown_defaults


class DoSomethingConfig(Config):
    config_param: str
    times: int = 1


class Other(Config):
    config_param: str


class Login(Config):
    user: str
    password: SecretStr
    since: date = date(2024, 1, 1)


class Store(Resource):
    url: str = "mem://"


@task
def do_something(config: DoSomethingConfig) -> str:
    return config.config_param * config.times


@task
def login(config: Login) -> str:
    return f"{config.user}:{config.password.get_secret_value()}:{config.since}"


@workflow(resources={"store": Store()})
def do_it_all() -> None:
    do_something()


@workflow
def logs_in() -> None:
    login()


def test_a_config_instance_in_a_dict_is_stored_as_plain_data(instance: Instance) -> None:
    # Before: sqlalchemy StatementError "Object of type DoSomethingConfig is not JSON
    # serializable" while recording the run.
    result = do_it_all.run(
        {"tasks": {"do_something": {"config": DoSomethingConfig(config_param="a", times=2)}}},
        instance=instance,
    )
    assert result.output("do_something") == "aa"
    stored = instance.run_store.get(result.run_id).run_config
    assert stored == {"tasks": {"do_something": {"config": {"config_param": "a", "times": 2}}}}


def test_a_config_instance_as_the_task_entry(instance: Instance) -> None:
    result = do_it_all.run(
        {"tasks": {"do_something": DoSomethingConfig(config_param="b")}}, instance=instance
    )
    assert result.output("do_something") == "b"


@pytest.mark.parametrize("keyword", ["tasks", "ops"])
def test_run_config_object_with_tasks_or_ops(instance: Instance, keyword: str) -> None:
    cfg = RunConfig(
        **{keyword: {"do_something": DoSomethingConfig(config_param="c")}},
        resources={"store": Store(url="mem://2")},
    )
    result = do_it_all.run(run_config=cfg, instance=instance)
    assert result.output("do_something") == "c"
    stored = instance.run_store.get(result.run_id).run_config
    assert stored["resources"] == {"store": {"url": "mem://2"}}


def test_dagster_dict_form_with_ops(instance: Instance) -> None:
    cfg = RunConfig(ops={"do_something": {"config": {"config_param": "d"}}})
    assert do_it_all.run(cfg, instance=instance).output("do_something") == "d"
    plain = {"ops": {"do_something": {"config": {"config_param": "e"}}}}
    assert do_it_all.run(plain, instance=instance).output("do_something") == "e"


def test_secret_fields_are_masked_and_dates_stored_as_text(instance: Instance) -> None:
    cfg = RunConfig(tasks={"login": Login(user="ann", password=SecretStr("hunter2"))})
    result = logs_in.run(cfg, instance=instance)
    assert result.output("login") == "ann:hunter2:2024-01-01"
    stored = instance.run_store.get(result.run_id).run_config
    assert stored == {
        "tasks": {"login": {"config": {"user": "ann", "password": "***", "since": "2024-01-01"}}}
    }


def test_a_config_body_takes_an_instance(instance: Instance) -> None:
    @job
    def body(config: DoSomethingConfig) -> str:
        return config.config_param

    assert body.run(RunConfig(config=DoSomethingConfig(config_param="f")), instance=instance)
    assert (
        body.run({"config": DoSomethingConfig(config_param="g")}, instance=instance).output("body")
        == "g"
    )


def test_bad_typed_config_is_a_clear_error(instance: Instance) -> None:
    with pytest.raises(ConfigError, match=r"tasks\.do_something\.config: got a Other, but"):
        do_it_all.run({"tasks": {"do_something": Other(config_param="x")}}, instance=instance)
    with pytest.raises(ConfigError, match="give tasks= or its Dagster name ops=, not both"):
        RunConfig(tasks={}, ops={})
    with pytest.raises(ConfigError, match=r"expected a mapping \(a dict, or a RunConfig"):
        do_it_all.run(["tasks"], instance=instance)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'tasks' or its Dagster name 'ops', not both"):
        do_it_all.run({"tasks": {}, "ops": {}}, instance=instance)
    with pytest.raises(ConfigError, match=r"resources\.store: run config holds a resource's"):
        do_it_all.run({"resources": {"store": object()}}, instance=instance)


# -- job-level default config ----------------------------------------------------------


@workflow(config=RunConfig(ops={"do_something": DoSomethingConfig(config_param="stuff")}))
def do_it_all_with_default_config() -> None:
    do_something()


def test_default_config_applies_and_a_run_wins_per_field(instance: Instance) -> None:
    job_ = do_it_all_with_default_config
    assert job_.run(instance=instance).output("do_something") == "stuff"
    partial = {"tasks": {"do_something": {"config": {"times": 3}}}}
    result = job_.run(partial, instance=instance)
    assert result.output("do_something") == "stuffstuffstuff"
    stored = instance.run_store.get(result.run_id).run_config
    assert stored == partial  # the defaults stay the job's, not the run's
    given = {"tasks": {"do_something": DoSomethingConfig(config_param="x")}}
    assert job_.run(given, instance=instance).output("do_something") == "x"


def test_default_config_as_a_dict_on_a_job_body(instance: Instance) -> None:
    @job(config={"config": {"n": 2}})
    def twice(n: int, m: int = 10) -> int:
        return n * m

    assert twice.run(instance=instance).output("twice") == 20
    assert twice.run({"config": {"m": 1}}, instance=instance).output("twice") == 2


def test_bad_default_config_is_refused_at_definition() -> None:
    with pytest.raises(DefinitionError, match=r"tasks\.nope: no task 'nope'"):

        @workflow(config={"tasks": {"nope": {"config": {}}}})
        def a() -> None:
            do_something()

    with pytest.raises(DefinitionError, match="got a Other, but this takes DoSomethingConfig"):

        @workflow(config=RunConfig(tasks={"do_something": Other(config_param="x")}))
        def b() -> None:
            do_something()

    with pytest.raises(DefinitionError, match="unknown key 'opz'"):

        @workflow(config={"opz": {}})
        def c() -> None:
            do_something()

    with pytest.raises(DefinitionError, match=r"expected a mapping \(a dict, or a RunConfig"):

        @workflow(config="stuff")
        def d() -> None:
            do_something()

    with pytest.raises(DefinitionError, match="takes config per task"):

        @workflow(config={"config": {"x": 1}})
        def e() -> None:
            do_something()

    with pytest.raises(
        DefinitionError,
        match=r"config=\.tasks\.do_something\.config\.when: a value of type object cannot",
    ):

        @workflow(config={"tasks": {"do_something": {"config": {"when": object()}}}})
        def g() -> None:
            do_something()

    with pytest.raises(DefinitionError, match=r"resources\.db: no resource 'db'"):

        @workflow(config={"resources": {"db": {}}})
        def f() -> None:
            do_something()


def test_a_default_missing_a_required_field_fails_the_run_naming_it(instance: Instance) -> None:
    @workflow(config={"tasks": {"do_something": {"config": {"times": 2}}}})
    def partial() -> None:
        do_something()

    with pytest.raises(ConfigError, match=r"tasks\.do_something\.config\.config_param"):
        partial.run(instance=instance)
    assert (
        partial.run(
            {"tasks": {"do_something": {"config": {"config_param": "z"}}}}, instance=instance
        ).output("do_something")
        == "zz"
    )


def test_shown_defaults_are_json_with_secrets_masked() -> None:
    @workflow(config={"tasks": {"login": Login(user="ann", password=SecretStr("pw"))}})
    def with_login() -> None:
        login()

    assert shown_defaults(with_login.default_config) == {
        "tasks": {"login": {"config": {"user": "ann", "password": "***", "since": "2024-01-01"}}}
    }
