"""``/api/tokens``: API tokens. Every signed-in user lists, makes and revokes its own; an
admin those of anyone. A token's secret is in the answer that makes it, and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import NotFoundError
from conveyor.server.app import state_of
from conveyor.server.auth import Action, Principal, allow, audit, require_signed_in
from conveyor.storage.identity import Token, TokenState

# Every signed-in caller manages its own tokens: allow(READ) asks for no role (and no
# CSRF token, which the changes below check themselves).
router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[Depends(allow(Action.READ))])
DAY = 86400.0
MAX_DAYS = 3650


async def signed_in_reading(request: Request) -> Principal:
    return require_signed_in(request)


async def signed_in_changing(request: Request) -> Principal:
    """A signed-in caller; from a browser, with the CSRF token."""
    from conveyor.server.security import check_csrf

    await check_csrf(request)
    return require_signed_in(request)


Reader = Annotated[Principal, Depends(signed_in_reading)]
Changer = Annotated[Principal, Depends(signed_in_changing)]


class TokenOut(BaseModel):
    """A token as lists show it: never its secret."""

    id: str = Field(description="the handle to revoke it by; its secret starts cvt_<id>_")
    user: str
    name: str
    state: TokenState
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, description="what uses it: ci, laptop...")
    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_DAYS, description="days until it stops working (none: never)"
    )
    user: str | None = Field(
        default=None, description="whose token (admins only; default: the caller's)"
    )


class NewToken(BaseModel):
    """A new token, with its secret: shown this once."""

    token: TokenOut
    secret: str = Field(description="send as 'Authorization: Bearer <secret>'; not shown again")


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def token_out(t: Token) -> TokenOut:
    return TokenOut(
        id=t.id,
        user=t.user_name,
        name=t.name,
        state=t.state(),
        created_at=datetime.fromtimestamp(t.created_at, UTC),
        expires_at=_at(t.expires_at),
        last_used_at=_at(t.last_used_at),
        revoked_at=_at(t.revoked_at),
    )


def _own_name(me: Principal) -> str:
    """The caller's user name; the local admin (``conveyor dev``) is no user."""
    if me.kind == "local":
        raise HTTPException(
            422,
            "the local admin of a server without logins has no tokens of its own: give "
            '"user" (a user of the instance), or add one with `conveyor users add`',
        )
    return me.name


@router.get("")
def list_tokens(request: Request, me: Reader, user: str | None = None) -> list[TokenOut]:
    """The caller's tokens, oldest first; an admin sees ``user``'s, or everyone's."""
    identity = state_of(request).instance.identity
    if user is not None and user != me.name and not me.is_admin:
        raise HTTPException(403, f"{me.label} may list its own tokens only; leave out user=")
    if user is None and not me.is_admin:
        user = me.name
    if user is not None and me.is_admin:
        identity.require_user(user)
    return [token_out(t) for t in identity.tokens(user)]


@router.post("", status_code=201)
def create_token(request: Request, me: Changer, body: Annotated[TokenIn, Body()]) -> NewToken:
    """Make a token; its secret is in this answer only."""
    owner = body.user if body.user is not None else _own_name(me)
    if owner != me.name and not me.is_admin:
        raise HTTPException(
            403, f"{me.label} may make tokens for itself only; leave out user (admins may)"
        )
    days = body.expires_in_days
    token, secret = state_of(request).instance.identity.create_token(
        owner, body.name, expires_in=days * DAY if days is not None else None
    )
    audit(request, "token create", token.id, user=owner, name=body.name, expires_in_days=days)
    return NewToken(token=token_out(token), secret=secret)


@router.delete("/{token_id}", status_code=204)
def revoke_token(request: Request, me: Changer, token_id: str) -> None:
    """Revoke a token (the caller's own, or any for an admin): it stops working at once."""
    identity = state_of(request).instance.identity
    token = identity.token(token_id)
    if token is None or (token.user_name != me.name and not me.is_admin):
        # Another's token is as unknown as one that does not exist.
        raise NotFoundError(f"no token {token_id!r} of yours; list them with GET /api/tokens")
    identity.revoke_token(token.id)
    audit(request, "token revoke", token.id, user=token.user_name, name=token.name)
