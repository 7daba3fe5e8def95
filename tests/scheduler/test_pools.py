"""Concurrency pools: a limit shared across jobs, set from the command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conveyor import ConfigError, Instance, NotFoundError, RunStatus, job
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace
from tests.commands import conveyor, home_env


@job(pool="warehouse", execute={"concurrency": None})
def load_a() -> None: ...


@job(pool="warehouse", execute={"concurrency": None})
def load_b() -> None: ...


def test_pool_store(durable: Instance) -> None:
    pools = durable.pool_store
    assert pools.get("warehouse") is None
    pools.set("warehouse", 4)
    pools.set("warehouse", 2)
    assert pools.all() == {"warehouse": 2}
    with pytest.raises(ConfigError, match="must be a whole number >= 1"):
        pools.set("warehouse", 0)
    pools.delete("warehouse")
    with pytest.raises(NotFoundError):
        pools.delete("warehouse")


def test_a_pool_limits_runs_across_jobs(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    instance.pool_store.set("warehouse", 1)
    daemon = Daemon(
        Workspace(jobs={"load_a": load_a, "load_b": load_b}, origin={"module": __name__}),
        instance,
        launch=lambda *_: None,
    )
    first = instance.run_store.create(job_name="load_a", job_version="v", status=RunStatus.QUEUED)
    second = instance.run_store.create(job_name="load_b", job_version="v", status=RunStatus.QUEUED)
    daemon.launch_queued()
    daemon.launch_queued()
    assert instance.run(first.id).status is RunStatus.STARTING
    assert instance.run(second.id).status is RunStatus.QUEUED
    assert instance.lease_store.held("pool:warehouse") == [first.id]
    instance.lease_store.release(first.id)  # the first run ended
    daemon.launch_queued()
    assert instance.run(second.id).status is RunStatus.STARTING
    instance.close()


def test_pools_from_the_command_line(tmp_path: Path) -> None:
    env = home_env(tmp_path / "home")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return conveyor(env, "pools", *args)

    assert cli("set", "warehouse", "4").stdout.strip() == "pool warehouse: at most 4 at once"
    assert json.loads(cli("list", "--json").stdout) == [
        {"name": "warehouse", "limit": 4, "held_by": []}
    ]
    assert cli("set", "warehouse", "0").returncode == 2
    assert cli("delete", "warehouse").returncode == 0
    missing = cli("delete", "warehouse")
    assert missing.returncode == 2
    assert "no pool 'warehouse'" in missing.stderr


@job
def single() -> None: ...


def test_a_run_started_elsewhere_keeps_its_slot_and_a_canceled_one_takes_none(
    durable: Instance,
) -> None:
    from conveyor.errors import InvalidTransitionError
    from conveyor.scheduler.admission import admit

    run = durable.run_store.create(job_name="single", job_version="v", status=RunStatus.QUEUED)
    stale = durable.run(run.id)  # what daemon b read before daemon a started the run
    assert admit(durable, single, stale)  # daemon a
    with pytest.raises(InvalidTransitionError):
        admit(durable, single, stale)  # daemon b
    assert durable.lease_store.held("job:single") == [run.id]  # still the run's
    durable.lease_store.release(run.id)
    queued = durable.run_store.create(job_name="single", job_version="v", status=RunStatus.QUEUED)
    seen = durable.run(queued.id)
    durable.cancel_run(queued.id)  # canceled after the daemon listed it
    with pytest.raises(InvalidTransitionError):
        admit(durable, single, seen)
    assert durable.lease_store.held("job:single") == []
