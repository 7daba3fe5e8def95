"""Concurrency pools: a limit shared by every job that names the pool."""

from __future__ import annotations

from sqlalchemy import delete, select

from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.db import Database
from conveyor.storage.schema import pools
from conveyor.storage.upsert import insert_or_update


class PoolStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, name: str, limit: int) -> None:
        """Allow at most ``limit`` runs in pool ``name`` at once."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"pool name {name!r}: give a non-empty name")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"pool {name!r}: the limit {limit!r} must be a whole number >= 1")
        with self.db.write() as conn:
            conn.execute(
                insert_or_update(conn, pools, ["name"], ["limit"]), {"name": name, "limit": limit}
            )

    def get(self, name: str) -> int | None:
        """The pool's limit; ``None`` when it has none (no limit)."""
        with self.db.read() as conn:
            value = conn.execute(select(pools.c.limit).where(pools.c.name == name)).scalar()
        return None if value is None else int(value)

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            if not conn.execute(delete(pools).where(pools.c.name == name)).rowcount:
                raise NotFoundError(f"no pool {name!r}; list them with `conveyor pools list`")

    def all(self) -> dict[str, int]:
        with self.db.read() as conn:
            return {
                r.name: int(r.limit) for r in conn.execute(select(pools).order_by(pools.c.name))
            }
