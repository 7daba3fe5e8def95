"""The audit log: who launched, canceled, reran, switched, changed access, made
tokens or read a secret; when, and from where.

Append-only: this store writes rows and reads them, and has no way to change
or delete one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, insert, select

from conveyor.storage.db import Database
from conveyor.storage.schema import audit_log

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None
    address: str | None


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        *,
        detail: Mapping[str, Any] | None = None,
        address: str | None = None,
    ) -> int:
        """Record that ``actor`` did ``action`` (to ``target``); the entry's id."""
        with self.db.write() as conn:
            result = conn.execute(
                insert(audit_log).values(
                    at=time.time(),
                    actor=actor[:255],
                    action=action[:64],
                    target=target[:512] if target is not None else None,
                    detail=dict(detail) if detail is not None else None,
                    address=address[:64] if address else None,
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries newest first; page with ``before_id`` (the last id of a page)."""
        query = select(audit_log).order_by(audit_log.c.id.desc())
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        with self.db.read() as conn:
            rows = conn.execute(query.limit(max(1, min(limit, MAX_PAGE)))).all()
        return [_entry(r) for r in rows]


def _entry(r: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=int(r.id),
        at=float(r.at),
        actor=r.actor,
        action=r.action,
        target=r.target,
        detail=r.detail,
        address=r.address,
    )
