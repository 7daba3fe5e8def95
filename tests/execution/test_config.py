"""Run config: typed, validated before the run, errors with full paths."""

from __future__ import annotations

import pytest

from conveyor import Config, ConfigError, Instance, task, workflow


class Source(Config):
    url: str
    limit: int = 100


@task
def extract(config: Source) -> list[int]:
    return list(range(config.limit))


@task
def count(rows: list[int], context) -> int:  # type: ignore[no-untyped-def]
    assert context.config is None
    return len(rows)


@workflow
def etl() -> None:
    count(extract())


def test_config_reaches_the_task(instance: Instance) -> None:
    result = etl.run(
        {"tasks": {"extract": {"config": {"url": "u", "limit": 7}}}}, instance=instance
    )
    assert result.output("count") == 7


@pytest.mark.parametrize(
    ("run_config", "message"),
    [
        (
            {"tasks": {"extract": {"config": {"url": "u", "limit": "x"}}}},
            "tasks.extract.config.limit: input should be a valid integer",
        ),
        ({}, "tasks.extract.config.url: field required"),
        (
            {"tasks": {"extract": {"config": {"url": "u", "extra": 1}}}},
            "tasks.extract.config.extra: unknown field",
        ),
        ({"tasks": {"extrct": {"config": {}}}}, "tasks.extrct: no task 'extrct'"),
        ({"tasks": {"count": {"config": {"a": 1}}}}, "tasks.count.config: task 'count' takes no"),
        ({"tasks": {"extract": {"cfg": {}}}}, "tasks.extract.cfg: unknown key"),
        ({"taks": {}}, "run config: unknown key 'taks'"),
        ({"config": {"a": 1}}, "takes config per task"),
        ({"resources": {"db": {}}}, "resources.db: job 'etl' has no resource 'db'"),
        ({"tasks": []}, "tasks: expected a mapping"),
        ([], "run config: expected a mapping"),
    ],
)
def test_bad_config_names_the_path(instance: Instance, run_config: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        etl.run(run_config, instance=instance)  # type: ignore[arg-type]
    assert message in str(err.value)
    assert etl.runs(instance=instance) == []
