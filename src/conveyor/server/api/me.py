"""``GET /api/me``: who the server takes the caller for (``conveyor login`` checks its token
with it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from conveyor.server.auth import Action, Principal, allow

router = APIRouter(tags=["me"])


class Me(BaseModel):
    """The caller: a user signed in, a user's API token, or the local admin."""

    name: str
    kind: str = Field(description="user, token or local (no login: `conveyor dev`)")
    role: str | None = Field(description="the instance role: viewer, operator, editor, admin")
    groups: list[str]
    token_id: str | None = Field(description="the id of the API token called with, if one")
    label: str = Field(description="how runs and the audit log name the caller")


@router.get("/me")
def get_me(principal: Annotated[Principal, Depends(allow(Action.READ))]) -> Me:
    """The caller: its name, role and groups (and the token's id when called with one)."""
    return Me(
        name=principal.name,
        kind=principal.kind,
        role=principal.role.value if principal.role is not None else None,
        groups=list(principal.groups),
        token_id=principal.token_id,
        label=principal.label,
    )
