"""Packaging a workspace: deterministic archives, what is left out, requirements, git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, WorkspaceError
from conveyor.execution.packaging import (
    archive_files,
    content_hash,
    package,
    requirements_hash,
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_same_files_give_the_same_bytes_and_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        _write(root / "pipelines.py", "X = 1\n")
        _write(root / "data" / "rows.csv", "1,2\n")
    os.utime(b / "pipelines.py", (1, 1))  # another time: the archive does not record it
    pa, pb = package(a / "pipelines.py"), package(b / "pipelines.py")
    assert pa.data == pb.data
    assert pa.hash == pb.hash
    assert pa.entry == "pipelines.py"
    assert pa.files == 2
    _write(b / "pipelines.py", "X = 2\n")
    assert package(b / "pipelines.py").hash != pa.hash


def test_the_hash_is_of_the_content_list(tmp_path: Path) -> None:
    _write(tmp_path / "jobs.py", "X = 1\n")
    pkg = package(tmp_path)
    files = archive_files(pkg.data, "test")
    assert files == [("jobs.py", 0o644, b"X = 1\n")]
    assert content_hash(files, None) == pkg.hash
    assert pkg.entry == "."


def test_caches_and_environments_are_left_out(tmp_path: Path) -> None:
    _write(tmp_path / "jobs.py", "X = 1\n")
    for junk in (
        ".git/config",
        "__pycache__/jobs.cpython-311.pyc",
        "sub/stale.pyc",
        ".venv/lib/x.py",
        "venv/lib/x.py",
        ".conveyor/profiles.toml",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".ruff_cache/x",
        "node_modules/x/index.js",
    ):
        _write(tmp_path / junk, "junk")
    _write(tmp_path / "sub" / "helper.py", "Y = 2\n")
    names = [p for p, _, _ in archive_files(package(tmp_path).data, "test")]
    assert names == ["jobs.py", "sub/helper.py"]


def test_a_file_in_a_package_packages_the_top_package(tmp_path: Path) -> None:
    _write(tmp_path / "proj" / "mypkg" / "__init__.py", "")
    _write(tmp_path / "proj" / "mypkg" / "flows" / "__init__.py", "")
    _write(tmp_path / "proj" / "mypkg" / "flows" / "jobs.py", "X = 1\n")
    _write(tmp_path / "proj" / "mypkg" / "helpers.py", "Y = 1\n")
    pkg = package(tmp_path / "proj" / "mypkg" / "flows" / "jobs.py")
    assert pkg.root == (tmp_path / "proj").resolve()
    assert pkg.entry == "mypkg/flows/jobs.py"


def test_refuses_a_missing_target_a_non_python_file_and_no_python(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no such file or folder"):
        package(tmp_path / "nope.py")
    _write(tmp_path / "notes.txt", "hi")
    with pytest.raises(WorkspaceError, match=r"a Python \(.py\) file or a folder"):
        package(tmp_path / "notes.txt")
    with pytest.raises(WorkspaceError, match="holds no Python file"):
        package(tmp_path)


def test_refuses_a_folder_over_the_limit(tmp_path: Path) -> None:
    _write(tmp_path / "jobs.py", "X = 1\n")
    (tmp_path / "big.bin").write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(WorkspaceError, match="pass 1 MB; keep data out"):
        package(tmp_path, limit=1024 * 1024)


def test_requirements_given_or_found_and_part_of_the_hash(tmp_path: Path) -> None:
    _write(tmp_path / "jobs.py", "X = 1\n")
    plain = package(tmp_path)
    assert plain.requirements is None
    assert plain.requirements_hash is None
    _write(tmp_path / "requirements.txt", "# pins\nsix==1.16.0\n\n")
    found = package(tmp_path)
    assert found.requirements == "# pins\nsix==1.16.0\n\n"
    assert found.requirements_hash == requirements_hash("six==1.16.0")
    other = _write(tmp_path.parent / "other-reqs.txt", "six==1.15.0\n")
    given = package(tmp_path, requirements=other)
    assert given.requirements == "six==1.15.0\n"
    assert len({plain.hash, found.hash, given.hash}) == 3
    # Comments and blank lines in a requirements file from elsewhere make no other version.
    _write(other, "# older\n\nsix==1.15.0  # the one\n")
    assert package(tmp_path, requirements=other).hash == given.hash
    with pytest.raises(ConfigError, match=r"--requirements .*no such file"):
        package(tmp_path, requirements=tmp_path / "missing.txt")


def test_git_state_outside_and_inside_a_repository(tmp_path: Path) -> None:
    _write(tmp_path / "jobs.py", "X = 1\n")
    assert package(tmp_path).git is None
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, timeout=30)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    ).stdout.strip()
    clean = package(tmp_path).git
    assert clean == {"commit": head, "dirty": False, "branch": "main"}
    _write(tmp_path / "jobs.py", "X = 2\n")
    assert package(tmp_path).git == {"commit": head, "dirty": True, "branch": "main"}


def test_a_tampered_or_escaping_archive_is_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    with pytest.raises(WorkspaceError, match="cannot be read"):
        archive_files(b"not a tarball", "version 9")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(WorkspaceError, match=r"version 9: .*'../evil.py'.*refused"):
        archive_files(raw.getvalue(), "version 9")
