"""``insert_or_update``: the database settles a clash on a key, on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import Connection, select

from conveyor.errors import StorageError
from conveyor.storage.instance import Instance
from conveyor.storage.schema import pools, signals
from conveyor.storage.upsert import insert_or_update


def test_a_taken_key_updates_the_named_columns(durable: Instance) -> None:
    with durable.db.write() as conn:
        stmt = insert_or_update(conn, pools, ["name"], ["limit"])
        conn.execute(stmt, [{"name": "a", "limit": 1}, {"name": "b", "limit": 2}])
        conn.execute(stmt, {"name": "a", "limit": 7})
    with durable.db.read() as conn:
        rows = conn.execute(select(pools.c.name, pools.c.limit).order_by(pools.c.name)).all()
    assert [tuple(r) for r in rows] == [("a", 7), ("b", 2)]


def test_without_columns_to_update_a_taken_key_is_left_as_it_is(durable: Instance) -> None:
    with durable.db.write() as conn:
        stmt = insert_or_update(conn, signals, ["job_name", "kind"])
        conn.execute(stmt, {"job_name": "j", "kind": "k", "at": 1.0})
        conn.execute(stmt, [{"job_name": "j", "kind": "k", "at": 2.0}])
        conn.execute(stmt, {"job_name": "j", "kind": "other", "at": 3.0})
    with durable.db.read() as conn:
        rows = conn.execute(select(signals).order_by(signals.c.kind)).all()
    assert [(r.kind, r.at) for r in rows] == [("k", 1.0), ("other", 3.0)]


def test_another_database_is_a_clear_error() -> None:
    conn = cast(Connection, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(StorageError, match=r"mysql database .* SQLite or PostgreSQL"):
        insert_or_update(conn, pools, ["name"], ["limit"])
