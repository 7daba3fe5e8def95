"""Runs pinned to their code: a run of a deployed version runs that version in its worker,
its rerun runs it again (``--version`` picks another), and ``job.run(version=N)`` runs
version N, whatever the files on disk say."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from conveyor.errors import ConfigError, NotFoundError
from conveyor.execution.deploy import deploy
from conveyor.execution.environments import environment_workspace
from conveyor.execution.rerun import parse_version, rerun_origin
from conveyor.execution.runner import start
from conveyor.scheduler.admission import admit
from conveyor.storage.records import RunRecord
from conveyor.workspace import load_file

WORKSPACE = """
from conveyor import job

CODE = "{code}"


@job
def hello() -> str:
    print(f"running code {{CODE}}")
    return CODE
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Instance]:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONVEYOR_URL", raising=False)
    instance = Instance.at(tmp_path / "home")
    yield instance
    instance.close()


def write(folder: Path, code: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "hello.py").write_text(WORKSPACE.format(code=code))
    return folder


def run_in_worker(instance: Instance, environment: str) -> RunRecord:
    """Queue a run of ``hello`` pinned to ``environment``'s active version, as the daemon
    does, and run it in a run-worker process of its own."""
    ws = environment_workspace(instance, environment)
    job = ws.job(f"{environment}.hello")
    number = ws.origin["version"]
    run = instance.run_store.create(
        job_name=job.name,
        job_version=job.version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": job.name},
        deployed_version=number,
        environment=environment,
    )
    assert admit(instance, job, run)
    worker = start(run.id, instance)
    assert worker.wait(timeout=120) == 0
    return instance.run(run.id)


def conveyor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def test_a_rerun_runs_the_code_of_its_run_and_version_picks_another(
    home: Instance, tmp_path: Path
) -> None:
    folder = write(tmp_path / "ws", "v1")
    deploy(home, folder, "dev")
    first = run_in_worker(home, "dev")
    assert (first.status, first.deployed_version, first.environment) == (
        RunStatus.SUCCESS,
        1,
        "dev",
    )
    assert home.result(first.id, "dev.hello") == "v1"
    write(folder, "v2")
    deploy(home, folder, "dev")
    write(folder, "v3 (not deployed)")

    again = conveyor("rerun", first.id, "--full")
    assert again.returncode == 0, again.stderr
    rerun = home.runs("dev.hello", limit=1)[0]
    assert rerun.parent_run_id == first.id
    assert (rerun.deployed_version, rerun.environment) == (1, "dev")
    assert home.result(rerun.id, "dev.hello") == "v1"

    latest = conveyor("rerun", first.id, "--full", "--version", "latest")
    assert latest.returncode == 0, latest.stderr
    newest = home.runs("dev.hello", limit=1)[0]
    assert newest.deployed_version == 2
    assert home.result(newest.id, "dev.hello") == "v2"

    # In Python, the job of the files on disk reruns the run's version, or another.
    local = load_file(folder / "hello.py").job("hello")
    assert local.rerun(first.id, full=True, instance=home).outputs == {"dev.hello": "v1"}
    picked = local.rerun(first.id, full=True, instance=home, version=2)
    assert picked.outputs == {"dev.hello": "v2"}
    assert home.run(picked.run_id).deployed_version == 2


def test_job_run_version_runs_that_versions_code(home: Instance, tmp_path: Path) -> None:
    folder = write(tmp_path / "ws", "v1")
    deploy(home, folder, "dev")
    write(folder, "v2")
    deploy(home, folder, "dev")
    write(folder, "on disk")
    job = load_file(folder / "hello.py").job("hello")
    assert job.run(instance=home).outputs == {"hello": "on disk"}
    result = job.run(instance=home, version=1)
    assert result.outputs == {"hello": "v1"}
    run = home.run(result.run_id)
    assert (run.deployed_version, run.environment) == (1, None)
    assert run.origin == {"version": 1, "job": "hello"}
    assert job.run(instance=home, version="latest").outputs == {"hello": "v2"}
    # A rerun of a run of version 1 runs version 1 again, unscoped.
    assert job.rerun(result.run_id, full=True, instance=home).outputs == {"hello": "v1"}


def test_bad_versions_are_refused(home: Instance, tmp_path: Path) -> None:
    folder = write(tmp_path / "ws", "v1")
    job = load_file(folder / "hello.py").job("hello")
    with pytest.raises(ConfigError, match="no version has been deployed yet"):
        job.run(instance=home, version="latest")
    deploy(home, folder, "dev")
    for bad in ("banana", "0", 0, -1, "1.5", True):
        with pytest.raises(ConfigError, match="give 'latest'"):
            parse_version(bad)  # type: ignore[arg-type]
    assert parse_version("3") == 3
    with pytest.raises(NotFoundError, match="no version 7: they are 1 to 1"):
        job.run(instance=home, version=7)
    result = job.run(instance=home)
    with pytest.raises(NotFoundError, match="no version 7"):
        rerun_origin(home, home.run(result.run_id), 7)
    refused = conveyor("rerun", result.run_id, "--full", "--version", "banana")
    assert refused.returncode != 0
    assert "version='banana': give 'latest'" in refused.stderr
    # A run in an environment with no active version has no latest one.
    run = home.run_store.create(
        job_name="qa.hello", job_version="x", environment="qa", deployed_version=1
    )
    with pytest.raises(ConfigError, match="'qa', which has no active version now"):
        rerun_origin(home, run, "latest")
