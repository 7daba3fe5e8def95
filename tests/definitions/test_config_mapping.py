"""``ConfigMapping`` / ``@config_mapping``: a job's run config given in a simpler schema and
mapped to its tasks' config before it is checked."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import (
    Config,
    ConfigError,
    ConfigMapping,
    DefinitionError,
    Instance,
    RunConfig,
    config_mapping,
    job,
    task,
    workflow,
)


class DoSomethingConfig(Config):
    config_param: str


class SimplifiedConfig(Config):
    simplified_param: str
    times: int = 1


@task
def do_something(config: DoSomethingConfig) -> str:
    return config.config_param


@config_mapping
def simplified(val: SimplifiedConfig) -> RunConfig:
    return RunConfig(
        ops={"do_something": DoSomethingConfig(config_param=val.simplified_param * val.times)}
    )


@workflow(config=simplified)
def do_it_all() -> None:
    do_something()


def test_the_decorator_makes_a_mapping_of_the_annotated_schema() -> None:
    assert isinstance(simplified, ConfigMapping)
    assert simplified.schema is SimplifiedConfig
    assert simplified({"simplified_param": "a", "times": 2}) == {
        "tasks": {"do_something": {"config": DoSomethingConfig(config_param="aa")}}
    }
    assert do_it_all.config_mapping is simplified
    assert do_it_all.default_config == {}


@pytest.mark.parametrize(
    "given",
    [{"simplified_param": "stuff"}, SimplifiedConfig(simplified_param="stuff")],
)
def test_a_run_takes_the_simplified_config_and_stores_it(instance: Instance, given: Any) -> None:
    result = do_it_all.run(given, instance=instance)
    assert result.output("do_something") == "stuff"
    assert instance.run(result.run_id).run_config == {"simplified_param": "stuff", "times": 1}


def test_errors_name_the_simplified_fields(instance: Instance) -> None:
    with pytest.raises(ConfigError) as e:
        do_it_all.run({"config_param": "x", "times": "many"}, instance=instance)
    text = str(e.value)
    assert "simplified_param: field required" in text
    assert "config_param: unknown field" in text
    assert "times: input should be a valid integer" in text
    with pytest.raises(ConfigError, match="got a DoSomethingConfig, but this takes Simplified"):
        do_it_all.run(DoSomethingConfig(config_param="x"), instance=instance)
    with pytest.raises(ConfigError, match=r"give its fields, e\.g\. SimplifiedConfig"):
        do_it_all.run(RunConfig(tasks={}), instance=instance)
    with pytest.raises(ConfigError, match="expected the fields of SimplifiedConfig, got list"):
        do_it_all.run([1], instance=instance)  # type: ignore[arg-type]


def test_a_mapping_that_returns_bad_config_is_named(instance: Instance) -> None:
    @config_mapping
    def wrong_task(val: SimplifiedConfig) -> dict[str, Any]:
        return {"tasks": {"nothing": {"config": {}}}}

    @config_mapping
    def not_config(val: SimplifiedConfig) -> Any:
        return 3

    @config_mapping
    def raising(val: SimplifiedConfig) -> Any:
        raise KeyError(val.simplified_param)

    runs = [
        (wrong_task, r"tasks\.nothing: no task 'nothing'"),
        (not_config, "config mapping 'not_config' returned a config that: expected a mapping"),
        (raising, "config mapping 'raising' raised KeyError: 'x'"),
    ]
    for mapping, message in runs:
        variant = do_it_all.to_job(name=f"with_{mapping.name}", config=mapping)
        assert variant.config_mapping is mapping
        with pytest.raises(ConfigError, match=message):
            variant.run({"simplified_param": "x"}, instance=instance)


def test_a_variant_keeps_the_mapping_and_a_dict_config_replaces_it(instance: Instance) -> None:
    same = do_it_all.to_job(name="same")
    assert same.run({"simplified_param": "v"}, instance=instance).output("do_something") == "v"
    plain = do_it_all.to_job(
        name="plain", config={"tasks": {"do_something": {"config": {"config_param": "p"}}}}
    )
    assert plain.config_mapping is None
    assert plain.run(instance=instance).output("do_something") == "p"


def test_a_rerun_maps_the_stored_config_again(durable: Instance) -> None:
    first = do_it_all.run({"simplified_param": "r"}, instance=durable)
    again = do_it_all.rerun(first.run_id, full=True, instance=durable)
    assert again.output("do_something") == "r"


def test_a_job_body_config_from_a_mapping(instance: Instance) -> None:
    @config_mapping
    def to_body(val: SimplifiedConfig) -> dict[str, Any]:
        return {"config": {"greeting": val.simplified_param}}

    @job(config=to_body)
    def hello(greeting: str) -> str:
        return greeting

    assert hello.run({"simplified_param": "hi"}, instance=instance).output("hello") == "hi"


def test_config_schema_may_be_given() -> None:
    mapping = ConfigMapping(lambda val: {}, config_schema=SimplifiedConfig)
    assert mapping.schema is SimplifiedConfig
    decorated = config_mapping(config_schema=SimplifiedConfig)(lambda val: {})
    assert decorated.schema is SimplifiedConfig


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda: {}, "takes one parameter, the simplified config"),
        (lambda a, b: {}, "takes one parameter, the simplified config"),
        (lambda val: {}, "annotate its parameter with a Config subclass"),
        (3, "ConfigMapping takes a function, got 3"),
    ],
)
def test_bad_mappings(fn: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        ConfigMapping(fn)
