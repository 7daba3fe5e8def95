"""The database's clock, for everything that decides whether a run is alive.

Heartbeats, leases and the judge of dead runs compare times written by
different machines. Each machine's own clock may be off by seconds or more,
so those times are the database's (``clock_timestamp()`` on PostgreSQL,
``julianday('now')`` on SQLite), in epoch seconds like every other time here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Float, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class db_now(FunctionElement[float]):
    """``now`` by the database's clock, in epoch seconds (a SQL expression)."""

    type = Float()
    inherit_cache = True
    name = "db_now"


@compiles(db_now)
def _default(element: Any, compiler: Any, **kw: Any) -> str:
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
    return "EXTRACT(EPOCH FROM clock_timestamp())::double precision"


@compiles(db_now, "sqlite")
def _sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


def now_in(conn: Connection) -> float:
    """The database's time, read in the caller's transaction."""
    return float(conn.execute(_NOW).scalar_one())


_NOW = select(db_now())
