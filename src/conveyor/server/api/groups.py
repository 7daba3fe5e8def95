"""``/api/groups``: groups of users, which access lists name as ``group:NAME`` (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import NotFoundError
from conveyor.server.api.users import ADMIN_READ
from conveyor.server.app import state_of
from conveyor.server.auth import Action, allow, audit

router = APIRouter(prefix="/groups", tags=["groups"])
ADMIN = [Depends(allow(Action.ADMIN))]


class Group(BaseModel):
    """A group and its members, by name."""

    name: str
    members: list[str]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="letters, digits and _ . @ + - (up to 255)")


def group_of(request: Request, name: str) -> Group:
    members = state_of(request).instance.identity.groups().get(name)
    if members is None:
        raise NotFoundError(f"no group {name!r}; list them with GET /api/groups")
    return Group(name=name, members=members)


@router.get("", dependencies=ADMIN_READ)
def list_groups(request: Request) -> list[Group]:
    """Every group with its members, by name."""
    groups = state_of(request).instance.identity.groups()
    return [Group(name=n, members=m) for n, m in groups.items()]


@router.post("", dependencies=ADMIN, status_code=201)
def add_group(request: Request, body: Annotated[GroupIn, Body()]) -> Group:
    """Add an empty group (422 if the name is taken or not a name)."""
    state_of(request).instance.identity.add_group(body.name)
    audit(request, "group add", body.name)
    return Group(name=body.name, members=[])


@router.delete("/{name}", dependencies=ADMIN, status_code=204)
def remove_group(request: Request, name: str) -> None:
    """Remove a group (its members stay users; access lists naming it grant nobody)."""
    state_of(request).instance.identity.remove_group(name)
    audit(request, "group remove", name)


@router.put("/{name}/members/{user}", dependencies=ADMIN)
def add_member(request: Request, name: str, user: str) -> Group:
    """Make ``user`` a member of the group (a member already: nothing changes)."""
    identity = state_of(request).instance.identity
    was_member = user in identity.groups().get(name, [])
    identity.add_member(name, user)
    if not was_member:
        audit(request, "group add member", name, user=user)
    return group_of(request, name)


@router.delete("/{name}/members/{user}", dependencies=ADMIN, status_code=204)
def remove_member(request: Request, name: str, user: str) -> None:
    """Take ``user`` out of the group."""
    state_of(request).instance.identity.remove_member(name, user)
    audit(request, "group remove member", name, user=user)
