"""A daemon of deployed environments (``conveyor daemon --env``): each environment runs
the jobs of its active version, follows promotions and rollbacks, fires the
``deployment`` trigger once per activation, and needs no files on disk."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.errors import ConfigError
from conveyor.execution.code_cache import cache_root
from conveyor.execution.deploy import deploy
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.environments import chosen_environments
from conveyor.scheduler.launching import server_key
from conveyor.storage.records import RunRecord
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import job

CODE = "{code}"


@job(trigger="deployment")
def announce() -> str:
    return CODE


@job(trigger="every:1s")
def beat() -> str:
    return CODE
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Instance]:
    """The instance, found by run workers through CONVEYOR_HOME."""
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONVEYOR_ENVIRONMENTS", raising=False)
    instance = Instance.at(tmp_path / "home")
    yield instance
    instance.close()


def write(folder: Path, code: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "pipes.py").write_text(WORKSPACE.format(code=code))
    return folder


@contextmanager
def daemons(instance: Instance, names: list[str], count: int = 1) -> Iterator[list[Daemon]]:
    """``count`` daemons of ``names`` in threads; stopped, and their runs ended, after."""
    started = [Daemon.of_environments(names, instance) for _ in range(count)]
    stop = threading.Event()
    threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in started]
    for t in threads:
        t.start()
    try:
        yield started
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        assert not any(t.is_alive() for t in threads)
        wait_until(
            lambda: not instance.runs(status="starting") and not instance.runs(status="running"),
            60,
            "the runs the daemons started to end",
        )
        for d in started:
            d.reap(wait=10)


def runs_of(instance: Instance, job: str) -> list[RunRecord]:
    return instance.runs(job, limit=500)


def succeeded(
    instance: Instance, job: str, when: Callable[[RunRecord], bool] = lambda r: True
) -> Callable[[], list[RunRecord]]:
    def found() -> list[RunRecord]:
        return [r for r in runs_of(instance, job) if r.status is RunStatus.SUCCESS and when(r)]

    return found


def output(instance: Instance, run: RunRecord) -> str:
    return str(instance.result(run.id, run.job_name))


def test_each_environment_fires_its_version_and_follows_a_rollback(
    home: Instance, tmp_path: Path
) -> None:
    folder = write(tmp_path / "ws", "v1")
    assert deploy(home, folder, "dev").version.number == 1
    write(folder, "v2")
    assert deploy(home, folder, "dev").version.number == 2
    home.deployments.activate("pre", 1, action="promote", from_environment="dev")
    with daemons(home, ["dev", "pre"]) as (daemon,):
        pre = wait_until(succeeded(home, "pre.beat"), 60, "a scheduled run in pre")[0]
        dev = wait_until(succeeded(home, "dev.beat"), 60, "a scheduled run in dev")[0]
        assert (pre.deployed_version, pre.environment, output(home, pre)) == (1, "pre", "v1")
        assert (dev.deployed_version, dev.environment, output(home, dev)) == (2, "dev", "v2")
        assert pre.origin == {"environment": "pre", "version": 1, "job": "pre.beat"}
        home.deployments.activate("dev", 1, action="rollback")
        back = wait_until(
            succeeded(home, "dev.beat", lambda r: r.deployed_version == 1),
            60,
            "a scheduled run of version 1 in dev after the rollback",
        )[0]
        assert output(home, back) == "v1"
        # One launch server per active version, each still serving (none refused to fork).
        workers = daemon._workers
        assert workers is not None
        assert sorted(workers.servers) == sorted(
            server_key({"environment": e, "version": 1}) for e in ("dev", "pre")
        )
        assert all(s.poll() is None for s in workers.servers.values())
    # A version once active is not run by the schedule of another environment.
    assert {r.deployed_version for r in runs_of(home, "pre.beat")} == {1}


def test_the_deployment_trigger_fires_once_per_activation_and_the_files_may_go(
    home: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor.daemon")
    folder = write(tmp_path / "ws", "v1")
    with daemons(home, ["dev"], count=2):
        wait_until(
            lambda: "environment dev has no active version yet" in caplog.text,
            30,
            "the daemon to say it waits for a version",
        )
        deploy(home, folder, "dev")
        first = wait_until(succeeded(home, "dev.announce"), 60, "the deployment run of v1")
        assert output(home, first[0]) == "v1"
        again = deploy(home, folder, "dev")  # identical code: no version, no activation
        assert not again.created
        assert not again.activated
        write(folder, "v2")
        deploy(home, folder, "dev")
        second = wait_until(
            succeeded(home, "dev.announce", lambda r: r.deployed_version == 2),
            60,
            "the deployment run of v2",
        )
        assert output(home, second[0]) == "v2"
        # The code comes from the blob store through the cache: the files may go.
        shutil.rmtree(folder)
        gone = wait_until(lambda: home.runs("dev.beat", limit=1), 30, "a scheduled run")[0]
        later = wait_until(
            succeeded(home, "dev.beat", lambda r: r.created_ts > gone.created_ts),
            60,
            "a scheduled run after the files were deleted",
        )
        assert output(home, later[0]) == "v2"
    announced = runs_of(home, "dev.announce")
    # One run per activation, though two daemons watched them.
    assert sorted(r.deployed_version or 0 for r in announced) == [1, 2]
    assert {r.trigger for r in announced} == {"deployment"}


def test_env_names_are_checked() -> None:
    names = ["dev", "pre", "prod"]
    assert chosen_environments(["prod", "dev"], names) == ["dev", "prod"]
    assert chosen_environments(["all"], names) == names
    assert chosen_environments(["dev,pre"], names) == ["dev", "pre"]
    with pytest.raises(ConfigError, match="'qa': no such environment; the environments are dev"):
        chosen_environments(["qa"], names)


def test_a_daemon_needs_an_environment(home: Instance) -> None:
    with pytest.raises(ConfigError, match="at least one"):
        Daemon.of_environments([], home)


def test_the_daemon_command_refuses_bad_environments(home: Instance, tmp_path: Path) -> None:
    def daemon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor.cli", "daemon", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ.copy(),
        )

    unknown = daemon("--env", "qa")
    assert unknown.returncode != 0
    assert "--env 'qa': no such environment; the environments are dev, pre, prod" in (
        unknown.stderr
    )
    both = daemon(str(write(tmp_path / "ws", "v1")), "--env", "dev")
    assert both.returncode == 2
    assert "either TARGET" in both.stderr


def test_a_version_that_cannot_load_leaves_the_one_before_running(
    home: Instance, tmp_path: Path
) -> None:
    folder = write(tmp_path / "ws", "v1")
    deploy(home, folder, "dev")
    write(folder, "lost")
    # Deployed by another process: this one (the daemon's) has never loaded version 2.
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "deploy", str(folder), "--env", "dev"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    broken = home.deployments.version(2)
    home.deployments.activate("dev", 1, action="rollback")
    # Version 2's archive is lost, and no machine has it unpacked.
    home.blobs.remove(broken.archive_uri)
    shutil.rmtree(cache_root(home) / broken.hash, ignore_errors=True)
    with daemons(home, ["dev"]) as (daemon,):
        first = wait_until(succeeded(home, "dev.beat"), 60, "a scheduled run of version 1")[0]
        home.deployments.activate("dev", 2, action="deploy")
        assert daemon.environments is not None
        wait_until(lambda: daemon.environments.errors, 30, "the daemon to fail to load v2")  # type: ignore[union-attr]
        assert "version 2: its archive" in str(daemon.environments.errors[0])
        later = wait_until(
            succeeded(home, "dev.beat", lambda r: r.created_ts > first.created_ts + 1),
            60,
            "scheduled runs going on",
        )
        assert {r.deployed_version for r in later} == {1}
        assert daemon.environments.active == {"dev": 1}


CHAINED = """
from conveyor import job


@job(trigger="every:1s")
def etl() -> str:
    return "etl"


@job(trigger="job.success:etl")
def report() -> str:
    return "report"
"""


def test_chains_follow_runs_of_their_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    instance = Instance.at(tmp_path / "home")
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "pipes.py").write_text(CHAINED)
    deploy(instance, folder, "dev")
    daemon = Daemon.of_environments(["dev"], instance)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        done = wait_until(
            lambda: [r for r in instance.runs("dev.report") if r.status is RunStatus.SUCCESS],
            60,
            "a chained run of dev.report",
        )
        upstream = instance.run(done[0].tags["upstream_run"])
        assert upstream.job_name == "dev.etl"
        assert (done[0].deployed_version, done[0].environment) == (1, "dev")
    finally:
        stop.set()
        thread.join(timeout=20)
        wait_until(
            lambda: not instance.runs(status="running") and not instance.runs(status="starting"),
            60,
            "runs to end",
        )
        daemon.reap(wait=10)
        instance.close()
