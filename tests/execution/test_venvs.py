"""Virtual environments per requirements hash: built once, reused, nothing left of a
failed build, and a run's build recorded with the run.

The builds install ``termcolor`` (a small pure-Python package not installed in the
project's environment) from the package index, offline on the CI machines.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, ExecutionError
from conveyor.execution.venvs import (
    LOG_KEY,
    READY,
    ensure_venv,
    is_ready,
    venv_for_run,
    venv_timeout,
    venvs_root,
)
from conveyor.storage.deployments import NewVersion
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus

OLD = "termcolor==2.3.0\n"
BAD = "conveyor-no-such-package-anywhere==1.0\n"


def digest_of(requirements: str) -> str:
    return hashlib.sha256(requirements.encode()).hexdigest()


def probe(python: Path) -> str:
    """What the environment's interpreter imports: termcolor's release and Conveyor."""
    code = (
        "import importlib.metadata as m, termcolor, conveyor; "
        "print(m.version('termcolor'), termcolor.__file__, conveyor.__name__)"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """One environment with termcolor 2.3.0, built once for the module: (root, python, log)."""
    root = tmp_path_factory.mktemp("venvs")
    lines: list[str] = []
    python = ensure_venv(OLD, digest_of(OLD), root=root, log=lines.append, timeout=300)
    return root, python, lines


def test_builds_an_environment_with_the_requirements_over_conveyors(
    built: tuple[Path, Path, list[str]],
) -> None:
    root, python, lines = built
    assert python == root / digest_of(OLD) / "bin" / "python"
    version, where, name = probe(python).split()
    assert version == "2.3.0"
    assert where.startswith(str(root / digest_of(OLD)))
    assert name == "conveyor"
    assert any("Successfully installed termcolor-2.3.0" in line for line in lines)
    assert (root / digest_of(OLD) / "requirements.txt").read_text() == OLD


def test_a_built_environment_is_reused_without_building(
    built: tuple[Path, Path, list[str]],
) -> None:
    root, python, _ = built
    marker = root / digest_of(OLD) / READY
    before = marker.stat().st_mtime_ns
    lines: list[str] = []
    assert ensure_venv(OLD, digest_of(OLD), root=root, log=lines.append) == python
    assert lines == []
    assert marker.stat().st_mtime_ns == before


def test_two_builders_at_once_build_it_once(tmp_path: Path) -> None:
    digest = digest_of(OLD)
    logs: list[list[str]] = [[], []]
    found: list[Path | BaseException] = []

    def build(log: list[str]) -> None:
        try:
            found.append(ensure_venv(OLD, digest, root=tmp_path, log=log.append, timeout=300))
        except BaseException as e:
            found.append(e)

    threads = [threading.Thread(target=build, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert found == [tmp_path / digest / "bin" / "python"] * 2
    creations = [line for log in logs for line in log if line.startswith("creating")]
    assert len(creations) == 1
    waited = [log for log in logs if not any(line.startswith("creating") for line in log)]
    assert len(waited) == 1
    assert any("waiting for another process" in line for line in waited[0])


def test_a_bad_requirement_fails_with_the_installers_output_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    digest = digest_of(BAD)
    with pytest.raises(ExecutionError) as caught:
        ensure_venv(BAD, digest, root=tmp_path, log=lambda _: None, timeout=300)
    message = str(caught.value)
    assert "installing the requirements failed" in message
    assert "fix the version's requirements and deploy again" in message
    assert "conveyor-no-such-package-anywhere" in message  # pip's own words, quoted
    assert not (tmp_path / digest).exists()
    assert not is_ready(tmp_path, digest)


def test_a_build_over_its_timeout_is_stopped_and_leaves_nothing(tmp_path: Path) -> None:
    digest = digest_of(OLD)
    with pytest.raises(ExecutionError, match=r"took longer than 0.05s .* CONVEYOR_VENV_TIMEOUT"):
        ensure_venv(OLD, digest, root=tmp_path, log=lambda _: None, timeout=0.05)
    assert not (tmp_path / digest).exists()


def test_an_interrupted_build_is_built_again(
    tmp_path: Path, built: tuple[Path, Path, list[str]]
) -> None:
    digest = digest_of(OLD)
    left = tmp_path / digest / "bin"
    left.mkdir(parents=True)
    (left / "python").write_text("half a build")
    assert not is_ready(tmp_path, digest)
    python = ensure_venv(OLD, digest, root=tmp_path, log=lambda _: None, timeout=300)
    assert probe(python).split()[0] == "2.3.0"


@pytest.mark.parametrize("digest", ["", "XYZ", "abc", "../../etc", "a" * 129, "ABCDEF0123"])
def test_a_digest_that_is_not_a_hex_hash_is_refused(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ConfigError, match="expected 8-128 lower-case hex digits"):
        ensure_venv(OLD, digest, root=tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_bad_timeout_setting_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"CONVEYOR_VENV_TIMEOUT=.*positive number of seconds"):
        venv_timeout(value)


def test_the_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert venv_timeout("") == 900.0
    assert venv_timeout("30.5") == 30.5
    monkeypatch.setenv("CONVEYOR_VENV_TIMEOUT", "12")
    assert venv_timeout() == 12.0


# -- runs --------------------------------------------------------------------------------------


@pytest.fixture
def home_instance(tmp_path: Path) -> Iterator[Instance]:
    inst = Instance.at(tmp_path / "home")
    yield inst
    inst.close()


def add_version(instance: Instance, requirements: str | None, n: int) -> int:
    record, _ = instance.deployments.add_version(
        NewVersion(
            hash=f"{n:064x}",
            archive_uri=f"code/{n:064x}.tar.gz",
            size=0,
            entry="jobs.py",
            manifest={"jobs": {}},
            requirements=requirements,
            requirements_hash=None if requirements is None else digest_of(requirements),
        )
    )
    return record.number


def starting_run(instance: Instance, version: int) -> RunRecord:
    return instance.run_store.create(
        job_name="show", job_version="1", status=RunStatus.STARTING, deployed_version=version
    )


def test_a_runs_build_is_recorded_in_its_events_and_logs(home_instance: Instance) -> None:
    number = add_version(home_instance, OLD, 1)
    run = starting_run(home_instance, number)
    python = venv_for_run(home_instance, run)
    assert python == venvs_root(home_instance) / digest_of(OLD) / "bin" / "python"
    kinds = [e.kind for e in home_instance.event_store.for_run(run.id)]
    assert kinds == ["environment_building", "environment_ready"]
    ready = home_instance.event_store.for_run(run.id)[-1].message
    assert "built in" in ready
    out = home_instance.log_store.read(run.id, LOG_KEY)
    assert "Successfully installed termcolor-2.3.0" in out

    again = starting_run(home_instance, number)
    assert venv_for_run(home_instance, again) == python
    events = home_instance.event_store.for_run(again.id)
    assert [e.kind for e in events] == ["environment_ready"]
    assert home_instance.log_store.read(again.id, LOG_KEY) == ""


def test_a_run_without_requirements_runs_where_it_is(home_instance: Instance) -> None:
    plain = starting_run(home_instance, add_version(home_instance, None, 1))
    assert venv_for_run(home_instance, plain) is None
    files = home_instance.run_store.create(job_name="show", job_version="1")
    assert venv_for_run(home_instance, files) is None
    assert home_instance.event_store.for_run(plain.id) == []


def test_a_runs_failed_build_keeps_the_installers_output(home_instance: Instance) -> None:
    run = starting_run(home_instance, add_version(home_instance, BAD, 1))
    with pytest.raises(ExecutionError, match="installing the requirements failed"):
        venv_for_run(home_instance, run)
    out = home_instance.log_store.read(run.id, LOG_KEY)
    assert "conveyor-no-such-package-anywhere" in out
    assert "fix the version's requirements" in out
    kinds = [e.kind for e in home_instance.event_store.for_run(run.id)]
    assert kinds == ["environment_building"]
