"""Runs of time- and multi-partitioned jobs: the key and its window in the context of tasks,
job bodies and hooks on each executor, partition-dependent config, backfills over a span
of time keys, and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor import (
    Config,
    ConfigError,
    DailyPartitions,
    HourlyPartitions,
    Instance,
    MultiPartitions,
    RunContext,
    RunStatus,
    StaticPartitions,
    TaskContext,
    job,
    partition_config,
    task,
    workflow,
)
from conveyor.execution.launch import execute_run
from tests.commands import conveyor, home_env

DAYS = DailyPartitions(start="2024-01-01", timezone="Europe/Paris")
BY_REGION = MultiPartitions({"date": DAYS, "region": StaticPartitions(["us", "eu"])})


def facts(context: RunContext) -> dict[str, Any]:
    window = context.partition_window
    return {
        "key": context.partition_key,
        "same": context.partition == context.partition_key,
        "window": None if window is None else [w.isoformat() for w in window],
        "keys": context.partition_keys,
    }


@task
def describe(context: TaskContext) -> dict[str, Any]:
    return facts(context)


@workflow(partitions=BY_REGION)
def regional() -> None:
    describe()


@workflow(partitions=DAYS)
def daily() -> None:
    describe()


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_a_task_knows_its_key_window_and_dimensions(instance: Instance, executor: str) -> None:
    result = regional.run(partition="2024-01-03|eu", instance=instance, executor=executor)
    assert result.output("describe") == {
        "key": "2024-01-03|eu",
        "same": True,
        "window": ["2024-01-03T00:00:00+01:00", "2024-01-04T00:00:00+01:00"],
        "keys": {"date": "2024-01-03", "region": "eu"},
    }
    assert instance.run(result.run_id).partition_key == "2024-01-03|eu"
    plain = daily.run(partition="2024-01-02", instance=instance, executor=executor)
    assert plain.output("describe")["keys"] is None
    assert plain.output("describe")["window"][0] == "2024-01-02T00:00:00+01:00"


def test_a_job_body_and_its_hooks_see_the_partition(instance: Instance) -> None:
    seen: list[dict[str, Any]] = []

    @job(
        partitions=HourlyPartitions(start="2024-01-01"),
        on_success=lambda context: seen.append(facts(context)),
    )
    def hourly(context: RunContext) -> dict[str, Any]:
        return facts(context)

    result = hourly.run(partition="2024-01-01-13:00", instance=instance)
    expected = {
        "key": "2024-01-01-13:00",
        "same": True,
        "window": ["2024-01-01T13:00:00+00:00", "2024-01-01T14:00:00+00:00"],
        "keys": None,
    }
    assert result.output("hourly") == expected
    assert seen == [expected]


def test_static_partitions_have_no_window(instance: Instance) -> None:
    @workflow(partitions=["us", "eu"])
    def static() -> None:
        describe()

    result = static.run(partition="us", instance=instance)
    assert result.output("describe") == {"key": "us", "same": True, "window": None, "keys": None}


def test_bad_keys_record_nothing(instance: Instance) -> None:
    with pytest.raises(ConfigError, match="job 'daily' is partitioned by day"):
        daily.run(instance=instance)
    with pytest.raises(ConfigError, match="'2099-01-01' has not ended yet"):
        daily.run(partition="2099-01-01", instance=instance)
    with pytest.raises(ConfigError, match=r"\(dimension 'region'\): unknown partition 'mars'"):
        regional.run(partition="2024-01-03|mars", instance=instance)
    assert instance.runs(limit=5) == []


class Load(Config):
    day: str
    limit: int = 10


@task
def load(config: Load) -> dict[str, Any]:
    return {"day": config.day, "limit": config.limit}


@workflow(
    partitions=DAYS,
    config=partition_config(
        lambda key: {"tasks": {"load": {"config": {"day": key, "limit": int(key[-2:])}}}}
    ),
)
def configured() -> None:
    load()


def test_each_run_gets_the_config_of_its_partition(instance: Instance) -> None:
    first = configured.run(partition="2024-01-05", instance=instance)
    assert first.output("load") == {"day": "2024-01-05", "limit": 5}
    # the run stores only its own config: the defaults are made again from the key
    assert instance.run(first.run_id).run_config in ({}, None)
    # a run's own config wins, field by field
    own = configured.run(
        {"tasks": {"load": {"config": {"limit": 99}}}}, partition="2024-01-06", instance=instance
    )
    assert own.output("load") == {"day": "2024-01-06", "limit": 99}


def test_queued_runs_get_the_config_of_their_partition(durable: Instance) -> None:
    result = configured.backfill("2024-01-02", "2024-01-04", instance=durable)
    assert result.partitions == ["2024-01-02", "2024-01-03"]
    for rid in result.queued:
        durable.run_store.set_status(rid, RunStatus.STARTING)
        execute_run(rid, configured, instance=durable)
    done = {durable.run(r).partition_key: durable.result(r, "load") for r in result.queued}
    assert done == {
        "2024-01-02": {"day": "2024-01-02", "limit": 2},
        "2024-01-03": {"day": "2024-01-03", "limit": 3},
    }


def test_config_from_the_key_is_checked_like_any_config(instance: Instance) -> None:
    @job(partitions=DAYS, config=partition_config(lambda key: {"config": {"nope": 1}}))
    def strict(limit: int = 1) -> int:
        return limit

    with pytest.raises(ConfigError, match="nope"):
        strict.run(partition="2024-01-02", instance=instance)

    def broken(key: str) -> dict[str, Any]:
        raise ValueError(f"no data for {key}")

    @job(partitions=DAYS, config=partition_config(broken))
    def fragile(limit: int = 1) -> int:
        return limit

    with pytest.raises(ConfigError, match="raised ValueError: no data for 2024-01-02"):
        fragile.run(partition="2024-01-02", instance=instance)
    assert instance.runs(limit=5) == []


def test_a_backfill_over_a_span_of_time_keys(instance: Instance) -> None:
    result = regional.backfill(start="2024-01-02", end="2024-01-04", instance=instance)
    assert sorted(result.partitions) == [
        "2024-01-02|eu",
        "2024-01-02|us",
        "2024-01-03|eu",
        "2024-01-03|us",
    ]
    assert result.intervals == []
    again = regional.backfill(start="2024-01-02", end="2024-01-04", instance=instance)
    assert (len(again.queued), again.skipped) == (0, 4)
    some = regional.backfill(
        start="2024-01-01", end="2024-01-03", partitions=["2024-01-01|us"], instance=instance
    )
    assert some.partitions == ["2024-01-01|us"]
    with pytest.raises(ConfigError, match="no complete partition of DailyPartitions"):
        daily.backfill(start="2099-01-01", instance=instance)
    with pytest.raises(ConfigError, match="start '2024-01-04' must be before end"):
        daily.backfill(start="2024-01-04", end="2024-01-02", instance=instance)


WORKSPACE = """
from conveyor import DailyPartitions, task, workflow

@task
def day(context) -> str:
    return context.partition_key + " " + context.partition_window[1].isoformat()

@workflow(partitions=DailyPartitions(start="2024-01-01"))
def days() -> None:
    day()
"""


def test_partitions_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.py"
    path.write_text(WORKSPACE)
    env = home_env(tmp_path / "home")
    ran = conveyor(env, "run", str(path), "days", "--partition", "2024-01-03")
    assert ran.returncode == 0, ran.stderr
    bad = conveyor(env, "run", str(path), "days", "--partition", "2024-01-32")
    assert bad.returncode == 2
    assert "'2024-01-32' is not a DailyPartitions key; write it as 2024-01-01" in bad.stderr
    instance = Instance.at(tmp_path / "home")
    [run] = instance.runs("days")
    assert run.partition_key == "2024-01-03"
    assert instance.result(run.id, "day") == "2024-01-03 2024-01-04T00:00:00+00:00"
    instance.close()
    span = ("--start", "2024-01-02", "--end", "2024-01-05")
    filled = conveyor(env, "backfill", str(path), "days", *span)
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout.splitlines()[0] == (
        "days: 3 partitions, 2 runs queued, 1 already queued or done"  # 2024-01-03 ran
    )
