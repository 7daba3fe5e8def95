"""Shared fixtures: instances on SQLite (memory and file) and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.storage import instance as instance_module
from conveyor.storage.instance import Instance

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_required() -> bool:
    """In CI the PostgreSQL suite must run: an unreachable server fails instead of skipping."""
    return os.environ.get("CI") == "true" or os.environ.get("CONVEYOR_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests never touch ~/.conveyor: the default instance is reset for each test."""
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
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
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import sqlalchemy as sa

    base = os.environ.get("CONVEYOR_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    name = f"conveyor_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        if postgres_required():
            pytest.fail(f"PostgreSQL at {base} is required here (CI) but unreachable: {e}")
        pytest.skip(f"PostgreSQL at {base} is unreachable: {e}")
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
