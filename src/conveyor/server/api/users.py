"""``/api/users``: the users who may sign in, their instance roles and passwords (admins).

Passwords go in (``password`` of a POST or PATCH) and never come out: no answer,
log or audit entry holds one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from conveyor.definitions.access import Role
from conveyor.server.app import state_of
from conveyor.server.auth import Action, Principal, allow, audit, authorize, login_required
from conveyor.storage.identity import User

router = APIRouter(prefix="/users", tags=["users"])
ADMIN = [Depends(allow(Action.ADMIN))]


def admin_reader(request: Request) -> Principal:
    """Admins only, for a GET: it changes nothing, so it carries no CSRF token to check
    (``allow(Action.ADMIN)`` asks for one, as for a change)."""
    return authorize(request, Action.ADMIN)


# allow(READ): a signed-in caller, no CSRF token asked; then admins only.
ADMIN_READ = [Depends(allow(Action.READ)), Depends(admin_reader)]


class UserOut(BaseModel):
    """A user as an admin sees it (never its password)."""

    name: str
    role: Role
    email: str | None
    groups: list[str]
    has_password: bool = Field(description="whether it may sign in with a password")
    oidc: bool = Field(description="whether it has signed in through OpenID Connect")
    disabled: bool
    created_at: datetime


class UserIn(BaseModel):
    """A new user: without a password it signs in through OpenID Connect only."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="letters, digits and _ . @ + - (up to 255)")
    role: Role = Role.VIEWER
    password: SecretStr | None = Field(default=None, description="at least 8 characters")
    email: str | None = Field(default=None, max_length=255)


class UserChange(BaseModel):
    """What to change of a user; what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: SecretStr | None = Field(default=None, description="at least 8 characters")
    disabled: bool | None = Field(
        default=None, description="a disabled user cannot sign in, and its tokens are refused"
    )


def user_out(u: User) -> UserOut:
    return UserOut(
        name=u.name,
        role=u.role,
        email=u.email,
        groups=list(u.groups),
        has_password=u.has_password,
        oidc=u.oidc_subject is not None,
        disabled=u.disabled,
        created_at=datetime.fromtimestamp(u.created_at, UTC),
    )


def keep_an_admin(request: Request, name: str, *, leaving: bool) -> None:
    """409 when ``leaving`` (removed, disabled or no longer admin) would leave a server that
    asks for logins without an enabled admin: nobody could manage users from the UI."""
    if not leaving or not login_required(request):
        return
    admins = [
        u.name
        for u in state_of(request).instance.identity.users()
        if u.role is Role.ADMIN and not u.disabled
    ]
    if admins == [name]:
        raise HTTPException(
            409,
            f"{name} is the only enabled admin: make another user admin first (or, on the "
            f"server's machine, `conveyor users set-role NAME admin`)",
        )


@router.get("", dependencies=ADMIN_READ)
def list_users(request: Request) -> list[UserOut]:
    """Every user, by name, with role, groups and how it signs in."""
    return [user_out(u) for u in state_of(request).instance.identity.users()]


@router.post("", dependencies=ADMIN, status_code=201)
def add_user(request: Request, body: Annotated[UserIn, Body()]) -> UserOut:
    """Add a user (422 naming the problem: a taken name, a short password...)."""
    password = body.password.get_secret_value() if body.password is not None else None
    user = state_of(request).instance.identity.add_user(
        body.name, body.role, password=password, email=body.email
    )
    audit(request, "user add", user.name, role=user.role.value, password=password is not None)
    return user_out(user)


@router.patch("/{name}", dependencies=ADMIN)
def change_user(request: Request, name: str, body: Annotated[UserChange, Body()]) -> UserOut:
    """Set a user's role, password or disabled state."""
    identity = state_of(request).instance.identity
    before = identity.require_user(name)
    demoted = body.role is not None and body.role is not Role.ADMIN
    keep_an_admin(
        request, name, leaving=before.role is Role.ADMIN and (demoted or bool(body.disabled))
    )
    if body.password is not None:
        identity.set_password(name, body.password.get_secret_value())
        audit(request, "user set password", name)
    if body.role is not None and body.role is not before.role:
        identity.set_role(name, body.role)
        audit(request, "user set role", name, role=body.role.value, was=before.role.value)
    if body.disabled is not None and body.disabled != before.disabled:
        identity.set_disabled(name, body.disabled)
        audit(request, "user disable" if body.disabled else "user enable", name)
    return user_out(identity.require_user(name))


@router.delete("/{name}", dependencies=ADMIN, status_code=204)
def remove_user(request: Request, name: str) -> None:
    """Remove a user with its group memberships, API tokens and sessions."""
    identity = state_of(request).instance.identity
    user = identity.require_user(name)
    keep_an_admin(request, name, leaving=user.role is Role.ADMIN)
    identity.remove_user(name)
    audit(request, "user remove", name)
