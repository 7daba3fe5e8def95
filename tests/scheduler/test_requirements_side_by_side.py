"""Acceptance 3 of issue 15: two versions whose requirements differ (two releases of
``termcolor``, a small pure-Python package) run at the same time under one daemon, each
in the virtual environment of its own requirements.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.execution.deploy import deploy
from conveyor.execution.venvs import LOG_KEY, venvs_root
from conveyor.scheduler.daemon import Daemon
from tests.waiting import wait_until

# Each run says which termcolor it imports, then waits (bounded) until the other
# version's run is running too: both succeed only if they ran at the same time.
JOBS = """\
import importlib.metadata
import os
import pathlib
import time

from conveyor import job


@job
def show() -> str:
    import termcolor  # from the version's requirements, not the project's environment

    found = importlib.metadata.version("termcolor")
    print(f"termcolor {found} from {termcolor.__file__}")
    meeting = pathlib.Path(os.environ["CONVEYOR_TEST_MEETING"])
    (meeting / found).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while len(list(meeting.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the other version's run never ran beside this one")
        time.sleep(0.05)
    return found
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run workers find the instance (and the meeting folder) through the environment,
    set before the daemon starts its launch servers."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    monkeypatch.setenv("CONVEYOR_TEST_MEETING", str(meeting))
    return home


@pytest.fixture
def instance(home: Path) -> Iterator[Instance]:
    inst = Instance.at(home)
    yield inst
    inst.close()


def deploy_with(instance: Instance, tmp_path: Path, environment: str, requirements: str) -> int:
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    (folder / "jobs.py").write_text(JOBS)
    (folder / "requirements.txt").write_text(requirements)
    return deploy(instance, folder / "jobs.py", environment).version.number


def queue(instance: Instance, environment: str, version: int) -> str:
    """A run of ``show`` in ``environment``, as the daemon's triggers queue it."""
    name = f"{environment}.show"
    return instance.run_store.create(
        job_name=name,
        job_version="1",
        status=RunStatus.QUEUED,
        origin={"environment": environment, "version": version, "job": name},
        deployed_version=version,
        environment=environment,
    ).id


@pytest.fixture
def daemon(instance: Instance) -> Iterator[Daemon]:
    d = Daemon.of_environments(["dev", "pre"], instance)
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,), daemon=True)
    thread.start()
    yield d
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    wait_until(
        lambda: not instance.runs(status="starting") and not instance.runs(status="running"),
        60,
        "runs to end",
    )
    d.reap(wait=10)


def test_two_versions_with_different_requirements_run_side_by_side(
    instance: Instance, tmp_path: Path, daemon: Daemon
) -> None:
    old = deploy_with(instance, tmp_path, "dev", "termcolor==2.3.0\n")
    new = deploy_with(instance, tmp_path, "pre", "termcolor==2.4.0\n")
    assert old != new
    runs = {queue(instance, "dev", old): "2.3.0", queue(instance, "pre", new): "2.4.0"}
    wait_until(
        lambda: all(instance.run(r).status.is_terminal for r in runs), 240, "both runs to end"
    )
    for run_id, release in runs.items():
        run = instance.run(run_id)
        assert run.status is RunStatus.SUCCESS, run.error
        assert instance.result(run_id, run.job_name) == release  # the task is "dev.show"
        out = instance.log_store.read(run_id, run.job_name)
        digest = instance.deployments.version(run.deployed_version or 0).requirements_hash
        assert digest is not None
        assert f"termcolor {release} from {venvs_root(instance) / digest}" in out
        kinds = [e.kind for e in instance.event_store.for_run(run_id)]
        assert kinds.count("environment_building") == 1
        assert kinds.count("environment_ready") == 1  # not again by the worker it became
        built = instance.log_store.read(run_id, LOG_KEY)
        assert f"Successfully installed termcolor-{release}" in built
    # Each began before the other ended.
    first, second = (instance.run(r) for r in runs)
    assert first.started_at is not None
    assert second.started_at is not None
    assert first.started_at < (second.ended_at or first.started_at)
    assert second.started_at < (first.ended_at or second.started_at)


def test_a_version_whose_requirements_cannot_install_fails_its_run_saying_why(
    instance: Instance, tmp_path: Path, daemon: Daemon
) -> None:
    bad = deploy_with(instance, tmp_path, "dev", "conveyor-no-such-package-anywhere==1.0\n")
    run_id = queue(instance, "dev", bad)
    wait_until(lambda: instance.run(run_id).status.is_terminal, 120, "the run to end")
    run = instance.run(run_id)
    assert run.status is RunStatus.FAILURE
    assert f"could not prepare the environment of version {bad}" in (run.error or "")
    assert "fix the version's requirements and deploy again" in (run.error or "")
    built = instance.log_store.read(run_id, LOG_KEY)
    assert "conveyor-no-such-package-anywhere" in built
