"""A bad CONVEYOR_HOME or CONVEYOR_DATABASE_URL is one line that names the variable, what
is wrong with its value and a form that works; the command exits 2 (bad usage, as
``conveyor --help`` documents). ``postgres://`` and ``postgresql://`` both reach PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.storage.instance import Instance

CONVEYOR = [sys.executable, "-m", "conveyor.cli"]
ACCEPTED_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def _conveyor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.run(
        [*CONVEYOR, *args],
        env={**base, "CONVEYOR_HOME": str(tmp_path / "home"), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    return line


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "CONVEYOR_DATABASE_URL='not a url' is not a database URL"),
        ("mysql://app:hunter2@db/app", "keeps its records in PostgreSQL or SQLite, not mysql"),
        ("postgresql+psycopg2://app@db/app", "through psycopg 3, not psycopg2"),
        ("", "CONVEYOR_DATABASE_URL is set but empty"),
    ],
)
def test_a_bad_database_url_is_named_with_a_form_that_works(
    tmp_path: Path, url: str, problem: str
) -> None:
    line = _one_error_line(_conveyor(tmp_path, "runs", "list", CONVEYOR_DATABASE_URL=url))
    assert "CONVEYOR_DATABASE_URL" in line
    assert problem in line
    assert ACCEPTED_FORM in line
    assert "hunter2" not in line  # a password is never printed


def test_a_home_under_a_file_names_the_variable_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    home = tmp_path / "notes.txt" / "conveyor"
    line = _one_error_line(_conveyor(tmp_path, "runs", "list", CONVEYOR_HOME=str(home)))
    assert line.startswith(f"error: CONVEYOR_HOME={str(home)!r}: ")
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in line
    assert "set it to a folder" in line


def test_an_empty_home_is_an_error_not_the_default_home(tmp_path: Path) -> None:
    line = _one_error_line(_conveyor(tmp_path, "runs", "list", CONVEYOR_HOME=""))
    assert "CONVEYOR_HOME is set but empty" in line
    assert "or unset it to use ~/.conveyor" in line
    assert not (Path(os.environ["HOME"]) / ".conveyor").exists()


def test_postgres_and_postgresql_urls_are_accepted(tmp_path: Path, pg_server_url: str) -> None:
    for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        url = scheme + pg_server_url[pg_server_url.index("://") :]
        done = _conveyor(tmp_path, "runs", "list", CONVEYOR_DATABASE_URL=url)
        assert (done.returncode, done.stderr) == (0, ""), scheme


def test_the_python_api_names_the_variable_or_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "mysql://app@db/app")
    with pytest.raises(ConfigError, match=r"^CONVEYOR_DATABASE_URL='mysql://app@db/app': "):
        Instance.from_env()
    with pytest.raises(ConfigError, match="CONVEYOR_DATABASE_URL="):
        Instance.default()  # what job.run() uses
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "")
    with pytest.raises(ConfigError, match="CONVEYOR_DATABASE_URL is set but empty"):
        Instance.default()
    monkeypatch.delenv("CONVEYOR_DATABASE_URL")
    monkeypatch.setenv("CONVEYOR_HOME", "")
    with pytest.raises(ConfigError, match="CONVEYOR_HOME is set but empty"):
        Instance.default()
    with pytest.raises(ConfigError, match=r"^database_url='not a url' is not a database URL"):
        Instance.at(tmp_path / "home", database_url="not a url")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^home='.*file': .* is a file, not a folder"):
        Instance.at(tmp_path / "file")
    with pytest.raises(ConfigError, match="home is empty"):
        Instance.at("")


def test_a_postgres_url_reaches_postgresql_from_the_python_api(
    tmp_path: Path, pg_server_url: str
) -> None:
    url = "postgres" + pg_server_url[pg_server_url.index("://") :]
    inst = Instance.at(tmp_path / "home", database_url=url)
    try:
        assert not inst.db.is_sqlite
        assert inst.db.url.startswith("postgresql+psycopg://")
        # A write and a read reach the server (the session's database holds other tests' rows).
        pool = f"env-errors-{uuid.uuid4().hex[:8]}"
        inst.pool_store.set(pool, 3)
        assert inst.pool_store.get(pool) == 3
    finally:
        inst.close()
