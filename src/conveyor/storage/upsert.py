"""Inserts that let the database settle a clash on a key (``INSERT ... ON CONFLICT``).

Looking first and then inserting or updating races with another writer (on
PostgreSQL both see no row, both insert, one fails), and catching the
``IntegrityError`` afterwards throws away the whole transaction. ``ON
CONFLICT`` decides inside the one statement, atomically, on SQLite and on
PostgreSQL alike; only the construct that spells it is per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Insert, Table

from conveyor.errors import StorageError


def insert_or_update(
    conn: Connection, table: Table, key: Sequence[str], update: Sequence[str] = ()
) -> Insert:
    """An ``INSERT`` into ``table`` for ``conn``'s database that, for a row whose ``key``
    columns are taken already, sets that row's ``update`` columns to the new values, or
    leaves the row as it is when ``update`` is empty (``ON CONFLICT DO NOTHING``).

    Execute it with the rows as parameters, as a plain ``table.insert()``.
    """
    stmt = dialect_insert(conn, table)
    if not update:
        out: Insert = stmt.on_conflict_do_nothing(index_elements=list(key))
    else:
        out = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: stmt.excluded[c] for c in update}
        )
    return out


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The ``INSERT`` construct of ``conn``'s database, for an ``ON CONFLICT`` of one's own
    (``on_conflict_do_update(set_=...)`` with expressions of ``excluded``: the row that
    clashed), which the two dialects spell alike."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise StorageError(
        f"the {dialect} database cannot be written to: Conveyor stores its state in SQLite "
        f"or PostgreSQL; set CONVEYOR_DATABASE_URL to a postgresql+psycopg:// URL, or unset it"
    )
