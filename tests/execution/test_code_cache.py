"""The code cache: a version unpacked once per machine, checked, raced and evicted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, NotFoundError, WorkspaceError
from conveyor.execution.code_cache import cache_root, materialize, unpack
from conveyor.execution.deploy import deploy
from conveyor.execution.packaging import package
from conveyor.storage.deployments import VersionRecord
from conveyor.storage.instance import Instance


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    instance = Instance.at(tmp_path / "home")
    yield instance
    instance.close()


def _version(inst: Instance, folder: Path, text: str) -> VersionRecord:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipelines.py").write_text(text)
    return deploy(inst, folder / "pipelines.py", "dev").version


JOB = """
from conveyor import task, workflow

@task
def say():
    return {text!r}

@workflow
def hello():
    say()
"""


def test_a_version_is_unpacked_once_into_the_cache(inst: Instance, tmp_path: Path) -> None:
    v = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    folder = materialize(inst, v)
    assert folder == tmp_path / "home" / "cache" / "code" / v.hash
    assert "return 'one'" in (folder / "pipelines.py").read_text()
    marker = folder / "written-by-the-first.txt"
    marker.write_text("kept")
    assert materialize(inst, v) == folder
    assert marker.read_text() == "kept"  # not unpacked again


def test_the_cache_folder_is_configurable(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CODE_CACHE", str(tmp_path / "elsewhere"))
    v = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    assert materialize(inst, v) == tmp_path / "elsewhere" / v.hash


def test_a_home_less_instance_caches_in_the_temp_folder(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    v = _version(instance, tmp_path / "ws", JOB.format(text="mem"))
    assert cache_root(instance) == tmp_path / "tmp" / "conveyor-code"
    assert (materialize(instance, v) / "pipelines.py").is_file()


def test_a_tampered_archive_is_refused_naming_the_version(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    monkeypatch.setenv("CONVEYOR_CODE_CACHE", str(tmp_path / "fresh-cache"))
    (tmp_path / "ws" / "pipelines.py").write_text(JOB.format(text="evil"))
    evil = package(tmp_path / "ws" / "pipelines.py")
    inst.blobs.put(v.archive_uri, evil.data)  # someone rewrote the stored archive
    with pytest.raises(WorkspaceError, match=rf"version {v.number}: .* not {v.hash[:12]}"):
        materialize(inst, v)
    assert not (tmp_path / "fresh-cache" / v.hash).exists()


def test_a_missing_archive_says_so(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    monkeypatch.setenv("CONVEYOR_CODE_CACHE", str(tmp_path / "fresh-cache"))
    inst.blobs.remove(v.archive_uri)
    with pytest.raises(NotFoundError, match=rf"version {v.number}: its archive .* is missing"):
        materialize(inst, v)


def test_racing_unpacks_share_one_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "jobs.py").write_text("X = 1\n")
    pkg = package(tmp_path / "ws")
    root = tmp_path / "cache"
    start = threading.Barrier(4)
    found: list[Path] = []

    def go() -> None:
        start.wait(timeout=30)
        found.append(unpack(pkg.data, pkg.hash, None, root, "race"))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert found == [root / pkg.hash] * 4
    assert sorted(p.name for p in root.iterdir()) == [pkg.hash]  # no temporary folder left


def test_the_least_recently_used_versions_are_evicted(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CODE_CACHE_VERSIONS", "2")
    v1 = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    v2 = _version(inst, tmp_path / "ws", JOB.format(text="two"))
    root = cache_root(inst)
    import os

    os.utime(root / v1.hash, (1, 1))
    os.utime(root / v2.hash, (2, 2))
    materialize(inst, v1)  # used now: v2 is the least recently used
    v3 = _version(inst, tmp_path / "ws", JOB.format(text="three"))
    materialize(inst, v3)
    assert sorted(p.name for p in root.iterdir()) == sorted([v1.hash, v3.hash])
    # An evicted version is unpacked again from the blob store when needed.
    assert "'two'" in (materialize(inst, v2) / "pipelines.py").read_text()


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_a_bad_cache_limit_is_refused(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    v = _version(inst, tmp_path / "ws", JOB.format(text="one"))
    monkeypatch.setenv("CONVEYOR_CODE_CACHE_VERSIONS", value)
    with pytest.raises(ConfigError, match=rf"CONVEYOR_CODE_CACHE_VERSIONS='{value}'.*at least 1"):
        materialize(inst, v)
