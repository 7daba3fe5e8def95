"""StaticPartitions: one run per key from triggers and backfills, context.partition, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor import ConfigError, Instance, RunStatus
from conveyor.definitions.intervals import parse_moment
from conveyor.execution.launch import execute_run
from conveyor.scheduler.backfill import backfill
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import load_file
from tests.commands import conveyor, home_env
from tests.scheduler import walking
from tests.waiting import wait_until

WALKING = Path(walking.__file__)


def partitions_of(instance: Instance, job: str) -> list[str | None]:
    return sorted(r.partition_key or "" for r in instance.runs(job, limit=100))  # type: ignore[misc]


def test_a_run_processes_the_partition_it_is_given(instance: Instance) -> None:
    result = walking.regions.run(partition="eu", instance=instance)
    assert result.output("regions") == "eu"
    assert instance.run(result.run_id).partition_key == "eu"
    # a run of a partitioned job processes one key: leaving it out is an error
    with pytest.raises(ConfigError, match=r"job 'regions' is partitioned.*pass partition="):
        walking.regions.run(instance=instance)
    # a rerun processes the same partition
    again = walking.regions.rerun(result.run_id, full=True, instance=instance)
    assert instance.run(again.run_id).partition_key == "eu"


def test_bad_partition_keys_are_clear_errors(instance: Instance) -> None:
    with pytest.raises(ConfigError, match="unknown partition 'mars'; its keys are us, eu, asia"):
        walking.regions.run(partition="mars", instance=instance)
    with pytest.raises(ConfigError, match="job 'walk' has no partitions"):
        walking.walk.run(partition="eu", instance=instance)
    assert instance.runs(limit=10) == []  # nothing was recorded


def test_a_backfill_makes_one_run_per_key_once(durable: Instance) -> None:
    first = backfill(walking.regions, instance=durable)
    assert (len(first.queued), first.skipped, first.partitions) == (3, 0, ["us", "eu", "asia"])
    assert first.intervals == []
    again = backfill(walking.regions, instance=durable)
    assert (len(again.queued), again.skipped) == (0, 3)
    assert partitions_of(durable, "regions") == ["asia", "eu", "us"]
    # once a key has succeeded, a new backfill (other tick keys) still skips it
    [eu] = [r for r in durable.runs("regions") if r.partition_key == "eu"]
    durable.run_store.set_status(eu.id, RunStatus.STARTING)
    execute_run(eu.id, walking.regions, instance=durable)
    assert durable.run_store.completed_partitions("regions", ["eu", "us"]) == {"eu"}


def test_a_backfill_of_some_keys_and_bad_keys(instance: Instance) -> None:
    result = walking.regions.backfill(partitions=["asia", "us", "asia"], instance=instance)
    assert result.partitions == ["asia", "us"]
    assert partitions_of(instance, "regions") == ["asia", "us"]
    with pytest.raises(ConfigError, match="unknown partition 'mars'"):
        backfill(walking.regions, partitions=["mars"], instance=instance)
    with pytest.raises(ConfigError, match="job 'walk' has no partitions"):
        backfill(walking.walk, "2026-01-01", "2026-01-03", partitions=["us"], instance=instance)
    with pytest.raises(ConfigError, match="give a list of partition keys"):
        backfill(walking.regions, partitions="us", instance=instance)


def test_a_backfill_of_intervals_times_keys(instance: Instance) -> None:
    result = backfill(walking.daily_regions, "2026-01-01", "2026-01-04", instance=instance)
    assert (len(result.intervals), result.partitions, len(result.queued)) == (3, ["us", "eu"], 6)
    runs = instance.runs("daily_regions", limit=10)
    pairs = sorted((r.interval_start.day, r.partition_key) for r in runs if r.interval_start)
    assert pairs == [(d, k) for d in (1, 2, 3) for k in ("eu", "us")]
    again = backfill(walking.daily_regions, "2026-01-01", "2026-01-04", instance=instance)
    assert (len(again.queued), again.skipped) == (0, 6)


def test_a_backfill_takes_its_span_from_the_jobs_interval(instance: Instance) -> None:
    result = backfill(walking.walk_to_an_end, instance=instance)
    assert [i.start.day for i in result.intervals] == [1, 2, 3]
    with pytest.raises(ConfigError, match="give a start and an end"):
        backfill(walking.daily_regions, start="2026-01-01", instance=instance)


def test_a_tick_fires_one_run_per_key_and_chains_keep_the_key(tmp_path: Path) -> None:
    ws = load_file(WALKING)
    instance = Instance.at(tmp_path / "home")
    now = parse_moment("2026-01-10T00:00:01", "t").timestamp()
    daemons = [Daemon(ws, instance, clock=lambda: now, launch=lambda *_: None) for _ in range(2)]
    for d in daemons:
        d.started = now - 5
        d.fire_timed(now)
    runs = instance.runs("daily_regions", limit=10)
    assert sorted(r.partition_key or "" for r in runs) == ["eu", "us"]
    assert {r.interval_start for r in runs} == {datetime(2026, 1, 9, tzinfo=UTC)}
    for d in daemons:
        d.fire_chained(now)  # the daemons see the chain before an upstream run ends
    # the eu run succeeds: the chained job runs for eu only
    [eu] = [r for r in runs if r.partition_key == "eu"]
    instance.run_store.set_status(eu.id, RunStatus.STARTING)
    execute_run(eu.id, walking.daily_regions, instance=instance)
    for d in daemons:
        d.fire_chained(now)
    [chained] = instance.runs("after_regions")
    assert chained.partition_key == "eu"
    instance.close()


def test_partitions_from_the_command_line(tmp_path: Path) -> None:
    env = home_env(tmp_path / "home")
    ran = conveyor(env, "run", str(WALKING), "regions", "--partition", "asia")
    assert ran.returncode == 0, ran.stderr
    bad = conveyor(env, "run", str(WALKING), "regions", "--partition", "mars")
    assert bad.returncode == 2
    assert "unknown partition 'mars'; its keys are us, eu, asia" in bad.stderr
    out = conveyor(env, "backfill", str(WALKING), "regions")
    assert out.returncode == 0, out.stderr
    summary, made = out.stdout.strip().splitlines()
    assert summary == "regions: 3 partitions, 2 runs queued, 1 already queued or done"
    backfill_id = made.removeprefix("backfill ")
    recorded = Instance.at(env["CONVEYOR_HOME"])
    assert recorded.backfills.get(backfill_id).run_count == 2
    recorded.close()
    both = conveyor(
        env, "backfill", str(WALKING), "daily_regions", "--start", "2026-01-01",
        "--end", "2026-01-03", "-p", "eu",
    )  # fmt: skip
    assert both.stdout.strip().splitlines()[0] == (
        "daily_regions: 2 intervals x 1 partition, 2 runs queued, 0 already queued or done"
    )
    queued = conveyor(env, "trigger", str(WALKING), "regions", "-p", "us")
    assert queued.returncode == 0, queued.stderr
    assert len(queued.stdout.split()) == 1
    fan_out = conveyor(env, "trigger", str(WALKING), "regions")
    assert len(fan_out.stdout.split()) == 3
    detached = conveyor(env, "run", str(WALKING), "regions", "-p", "us", "--detach")
    assert detached.returncode == 0, detached.stderr
    run_id = detached.stdout.strip()
    instance = Instance.at(tmp_path / "home")
    wait_until(
        lambda: instance.run(run_id).status.is_terminal, 60, "the detached run to end", every=0.1
    )
    assert instance.run(run_id).status is RunStatus.SUCCESS
    assert instance.result(run_id, "regions") == "us"
    instance.close()
    missing = conveyor(env, "backfill", str(WALKING), "daily_regions", "--end", "2026-01-03")
    assert missing.returncode == 2
    assert "give a start and an end (--start and --end)" in missing.stderr
