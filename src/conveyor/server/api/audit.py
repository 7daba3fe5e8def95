"""``GET /api/audit``: the audit log, newest first, for admins: who launched, canceled,
switched, changed users and access, made tokens or read a secret; when and from where.

There is no route to change or delete an entry: the log is append-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from conveyor.definitions.intervals import parse_moment
from conveyor.server.api.users import ADMIN_READ
from conveyor.server.app import state_of
from conveyor.storage.audit import MAX_PAGE, AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"])


class Entry(BaseModel):
    """Who did what (to what), when, and from which address."""

    id: int
    at: datetime
    actor: str = Field(description="a user, 'NAME (token ID)', 'local admin' or 'local:<OS user>'")
    action: str
    target: str | None
    detail: dict[str, Any] | None
    address: str | None


class AuditPage(BaseModel):
    entries: list[Entry]
    next_before_id: int | None = Field(
        description="pass as before_id for the next (older) page; null: this is the last"
    )


def entry(e: AuditEntry) -> Entry:
    return Entry(
        id=e.id,
        at=datetime.fromtimestamp(e.at, UTC),
        actor=e.actor,
        action=e.action,
        target=e.target,
        detail=e.detail,
        address=e.address,
    )


def audit_page(
    request: Request,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> AuditPage:
    """A page of entries, newest first, and the cursor of the next one."""
    after = parse_moment(since, "since").timestamp() if since else None
    found = state_of(request).instance.audit.entries(
        actor=actor or None,
        action=action or None,
        target=target or None,
        since=after,
        before_id=before_id,
        limit=limit + 1,
    )
    more = len(found) > limit
    page = found[:limit]
    return AuditPage(
        entries=[entry(e) for e in page], next_before_id=page[-1].id if more and page else None
    )


@router.get("", dependencies=ADMIN_READ)
def get_audit(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: Annotated[
        str | None, Query(description="only entries at or after this ISO date or datetime")
    ] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE - 1)] = 100,
) -> AuditPage:
    """Entries newest first, filtered by exact actor, action or target; page with
    ``before_id``."""
    return audit_page(
        request,
        actor=actor,
        action=action,
        target=target,
        since=since,
        before_id=before_id,
        limit=limit,
    )
