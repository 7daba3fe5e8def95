"""Shared fixtures: instances on SQLite (memory and file) and on PostgreSQL.

Without a PostgreSQL server (and outside CI, where it is required), the tests that need
one are skipped quietly and the run ends with one line saying so and how to run them.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from conveyor.storage import instance as instance_module
from conveyor.storage.instance import Instance


def pytest_configure(config: pytest.Config) -> None:
    """Commands the tests start take Ctrl-C as from a terminal, however the suite was started.

    A non-interactive shell starts a background job (``make test &``, a CI
    runner's script) with SIGINT ignored, and an ignored signal stays ignored
    across ``exec``: every ``conveyor`` a test starts would ignore the SIGINT
    the test sends it. A handled signal is reset to its default on ``exec``.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENV_PG_URL = "CONVEYOR_TEST_POSTGRES_URL"
# Each test that needs PostgreSQL says only this when there is none; why, and how to run
# them, is said once, at the end of the run (``pytest_terminal_summary``).
PG_SKIP = "no PostgreSQL server; see the end of the run"
PG_SKIPPED = "skipped without PostgreSQL"
_pg_unreachable = pytest.StashKey[str]()


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front which database server the suite creates and drops databases on."""
    base = os.environ.get(ENV_PG_URL, DEFAULT_PG_URL)
    return (
        f"database server of the postgres tests: {_safe(base)} ({ENV_PG_URL}); a "
        f"conveyor_test_<random> database is created there for the run and dropped at its end"
    )


def postgres_required() -> bool:
    """In CI the PostgreSQL suite must run: an unreachable server fails instead of skipping."""
    return os.environ.get("CI") == "true" or os.environ.get("CONVEYOR_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests never touch ~/.conveyor, nor a server the developer signed in to with
    `conveyor login`: the default instance is reset for each test."""
    for name in (
        "CONVEYOR_DATABASE_URL",
        "CONVEYOR_HOME",
        "CONVEYOR_URL",
        "CONVEYOR_TOKEN",
        "CONVEYOR_BLOB_URL",
        "CONVEYOR_BLOB_OPTIONS",
        "CONVEYOR_ENVIRONMENTS",
        "CONVEYOR_CODE_CACHE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    instance_module._default = None
    yield
    if instance_module._default is not None:
        instance_module._default[1].close()
    instance_module._default = None


@pytest.fixture
def instance() -> Iterator[Instance]:
    """An ephemeral (in-memory) instance."""
    inst = Instance.ephemeral()
    yield inst
    inst.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CONVEYOR_HOME set to a fresh folder: the default instance is an SQLite file there."""
    path = tmp_path / "conveyor-home"
    monkeypatch.setenv("CONVEYOR_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import sqlalchemy as sa

    base = os.environ.get(ENV_PG_URL, DEFAULT_PG_URL)
    name = f"conveyor_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        if postgres_required():
            pytest.fail(f"PostgreSQL at {_safe(base)} is required here (CI) but unreachable: {e}")
        # psycopg's first line ends with the cause: "... port 5432 failed: Connection refused"
        cause = str(getattr(e, "orig", None) or e).strip().splitlines()[0].rsplit(": ", 1)[-1]
        request.config.stash[_pg_unreachable] = f"{_safe(base)} unreachable ({cause.strip()})"
        pytest.skip(PG_SKIP)
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(inst: Instance) -> None:
    import sqlalchemy as sa

    from conveyor.storage.schema import metadata

    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with inst.db.write() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    """A durable instance, once on an SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        inst = Instance.at(tmp_path / "sqlite-home")
    else:
        url = request.getfixturevalue("pg_server_url")
        inst = Instance.at(tmp_path / "pg-home", database_url=url)
        _truncate(inst)
    yield inst
    inst.close()


def _safe(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _pg_skip(report: pytest.TestReport) -> bool:
    longrepr = report.longrepr
    return (
        report.skipped
        and isinstance(longrepr, tuple)
        and str(longrepr[2]).removeprefix("Skipped: ") == PG_SKIP
    )


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, str] | None:
    """Count tests skipped for want of PostgreSQL apart, so that ``-ra`` does not list each."""
    if _pg_skip(report):
        return PG_SKIPPED, "s", "SKIPPED"
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> Generator[None]:
    """One line after pytest's own summary when the PostgreSQL half was skipped."""
    try:
        return (yield)
    finally:
        skipped = len(terminalreporter.stats.get(PG_SKIPPED, []))
        why = config.stash.get(_pg_unreachable, None)
        if skipped and why is not None and not config.getoption("no_summary"):
            terminalreporter.write_line(
                f"PostgreSQL half skipped ({skipped} tests): {why}; to run it, start PostgreSQL "
                f"there or set {ENV_PG_URL}=postgresql+psycopg://USER@HOST:PORT/DB",
                yellow=True,
                bold=True,
            )
