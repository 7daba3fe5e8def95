"""Access lists as an admin edits them: per job (or workload) and principal, the
permissions that replace what the job's code declares (``@job(access=...)``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select

from conveyor.definitions.access import AccessList, Permission
from conveyor.storage.db import Database
from conveyor.storage.schema import job_access
from conveyor.storage.upsert import insert_or_update

Changes = dict[str, frozenset[Permission]]


@dataclass(frozen=True, slots=True)
class Grant:
    """One principal on a job's access list as it holds: what it may do, and where that
    comes from (the job's code, or an admin's change, which replaces the code's)."""

    principal: str
    permissions: frozenset[Permission]  # empty: an admin took the code's grant away
    source: Literal["code", "admin"]
    code: frozenset[Permission] | None  # what the code gives it, if the code lists it


def effective(declared: AccessList | None, changes: Changes) -> list[Grant] | None:
    """The job's list as it holds (its code's ``declared`` list with the admin's
    ``changes``), by principal; ``None`` when the job has none (the roles hold)."""
    if declared is None and not changes:
        return None
    code = dict(declared.grants) if declared is not None else {}
    out = [
        Grant(p, changes[p], "admin", code.get(p))
        if p in changes
        else Grant(p, code[p], "code", code[p])
        for p in sorted(set(code) | set(changes))
    ]
    return out


class AccessStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set(
        self, job_name: str, principal: str, permissions: Iterable[Permission], *, by: str
    ) -> None:
        """Give ``principal`` (``user:NAME``/``group:NAME``) exactly ``permissions`` on
        the job; an empty set takes away what the code gives it."""
        values = {
            "job_name": job_name,
            "principal": principal,
            "permissions": sorted(Permission(p).value for p in permissions),
            "changed_at": time.time(),
            "changed_by": by,
        }
        with self.db.write() as conn:
            conn.execute(
                insert_or_update(
                    conn,
                    job_access,
                    ["job_name", "principal"],
                    ["permissions", "changed_at", "changed_by"],
                ),
                values,
            )

    def reset(self, job_name: str, principal: str | None = None) -> int:
        """Forget the admin's changes (of one principal, or all) on the job: the code's
        list holds again. How many were forgotten."""
        query = delete(job_access).where(job_access.c.job_name == job_name)
        if principal is not None:
            query = query.where(job_access.c.principal == principal)
        with self.db.write() as conn:
            return int(conn.execute(query).rowcount)

    def changes(self, job_name: str) -> Changes:
        """The admin's changes to the job's list."""
        return self.all().get(job_name, {})

    def all(self) -> dict[str, Changes]:
        """Every job's changes, by job name (read once per request, not per job)."""
        out: dict[str, Changes] = {}
        with self.db.read() as conn:
            for r in conn.execute(select(job_access)):
                out.setdefault(r.job_name, {})[r.principal] = frozenset(
                    Permission(p) for p in r.permissions
                )
        return out
