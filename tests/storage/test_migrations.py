"""Migrations: they build exactly the schema the code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.storage.db import HEAD_REVISION, Database
from conveyor.storage.migrate import head_revision, upgrade
from conveyor.storage.schema import POSTGRES_ONLY_INDEXES, metadata


def test_the_head_constant_matches_the_scripts() -> None:
    assert head_revision() == HEAD_REVISION


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        db = Database(request.getfixturevalue("pg_server_url"))
        with db.write() as conn:
            metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    yield db
    db.dispose()


def test_migrations_match_the_models(empty_db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    empty_db.migrate()
    with empty_db.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    extra = [d for d in diff if d[0] == "remove_index" and d[1].name in POSTGRES_ONLY_INDEXES]
    assert [d for d in diff if d not in extra] == []
    assert len(extra) == (0 if empty_db.is_sqlite else len(POSTGRES_ONLY_INDEXES))


def test_down_and_up_again(empty_db: Database) -> None:
    from alembic import command

    from conveyor.storage.migrate import alembic_config

    empty_db.migrate()
    with empty_db.write() as conn:
        command.downgrade(alembic_config(conn), "base")
    with empty_db.read() as conn:
        assert not sa.inspect(conn).has_table("runs")
    with empty_db.write() as conn:
        upgrade(conn)
    empty_db.migrate()  # a no-op at head
    with empty_db.read() as conn:
        assert sa.inspect(conn).has_table("runs")
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == HEAD_REVISION


def test_a_bad_url_is_a_clear_storage_error(tmp_path: Path) -> None:
    from conveyor.errors import StorageError

    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="cannot open the database"):
        db.migrate()
    db.dispose()


def test_runs_and_leases_survive_the_upgrade_to_partitions(empty_db: Database) -> None:
    with empty_db.write() as conn:
        upgrade(conn, "0003")
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, job_name, job_version, status, created_at, updated_at, "
                "tags, run_config, trigger) VALUES ('a1', 'etl', 'v', 'success', 1, 2, '{}', "
                "'{}', 'manual')"
            )
        )
        conn.execute(
            sa.text("INSERT INTO leases (scope, slot, holder, expires_at) VALUES ('j', 0, 'a1', 9)")
        )
    empty_db.migrate()
    from conveyor.storage.runs import RunStore

    run = RunStore(empty_db).get("a1")
    assert (run.job_name, run.partition_key) == ("etl", None)
    with empty_db.write() as conn:  # a task's holder is longer than a run id
        conn.execute(
            sa.text("UPDATE leases SET holder = :h WHERE scope = 'j'"), {"h": "a1/" + "t" * 250}
        )
