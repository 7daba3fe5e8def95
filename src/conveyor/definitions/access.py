"""Who may do what to a job: permissions, instance roles and access lists.

An instance role (viewer, operator, editor, admin) gives its permissions on
every job that has no access list. A job that declares one
(``@job(access={"alice": ["read", "operate"], "group:quants": ["read"]})``)
gives each principal on it exactly the permissions listed, and nobody else
anything but the admins, who may do everything everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.errors import DefinitionError


class Permission(StrEnum):
    """What a grant allows on one job (or workload)."""

    READ = "read"  # see the job, its runs, logs, events and results
    OPERATE = "operate"  # launch, cancel, rerun, backfill, switch its triggers
    WRITE = "write"  # change its schedule or config defaults from the UI
    PROMOTE = "promote"  # promote its versions between environments
    ACCESS = "access"  # reach the app it serves


class Role(StrEnum):
    """A user's instance role: the permissions on jobs without an access list."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    EDITOR = "editor"
    ADMIN = "admin"


ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ, Permission.ACCESS}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.ACCESS, Permission.OPERATE}),
    Role.EDITOR: frozenset(
        {Permission.READ, Permission.ACCESS, Permission.OPERATE, Permission.WRITE}
    ),
    Role.ADMIN: ALL_PERMISSIONS,
}

USER_PREFIX = "user:"
GROUP_PREFIX = "group:"


def parse_role(value: str) -> Role:
    """``Role`` named by ``value``; ``DefinitionError`` naming the roles there are."""
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise DefinitionError(
            f"unknown role {value!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None


def parse_permissions(value: Any, where: str) -> frozenset[Permission]:
    """Permissions from a name, a comma-separated string or a list of names."""
    if isinstance(value, str):
        names = [p for p in (part.strip() for part in value.split(",")) if p]
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        names = list(value)
    else:
        raise DefinitionError(
            f"{where}: permissions must be a list such as ['read', 'operate'], "
            f"not {type(value).__name__}"
        )
    out: set[Permission] = set()
    for name in names:
        try:
            out.add(Permission(str(name).strip().lower()))
        except ValueError:
            raise DefinitionError(
                f"{where}: unknown permission {name!r}: use "
                f"{', '.join(p.value for p in Permission)}"
            ) from None
    return frozenset(out)


def principal_key(name: str, where: str) -> str:
    """``user:NAME`` or ``group:NAME`` from ``alice``, ``user:alice`` or ``group:quants``."""
    if not isinstance(name, str) or not name.strip():
        raise DefinitionError(f"{where}: a principal must be a user or group name, got {name!r}")
    name = name.strip()
    for prefix in (USER_PREFIX, GROUP_PREFIX):
        if name.startswith(prefix):
            if not name[len(prefix) :].strip():
                raise DefinitionError(f"{where}: {name!r} names no {prefix[:-1]}")
            return name
    if ":" in name:
        raise DefinitionError(
            f"{where}: {name!r}: name a user as 'alice' or 'user:alice', a group as 'group:quants'"
        )
    return USER_PREFIX + name


@dataclass(frozen=True, slots=True)
class AccessList:
    """Grants by principal (``user:NAME`` / ``group:NAME``)."""

    grants: Mapping[str, frozenset[Permission]]

    def permissions(self, user: str, groups: Iterable[str]) -> frozenset[Permission]:
        """What ``user``, a member of ``groups``, may do under this list."""
        out: set[Permission] = set(self.grants.get(USER_PREFIX + user, ()))
        for group in groups:
            out |= self.grants.get(GROUP_PREFIX + group, frozenset())
        return frozenset(out)

    def with_changes(self, changes: Mapping[str, frozenset[Permission]]) -> AccessList:
        """This list with ``changes`` replacing the grants they name (an empty set
        removes the principal)."""
        grants = dict(self.grants)
        for principal, perms in changes.items():
            if perms:
                grants[principal] = perms
            else:
                grants.pop(principal, None)
        return AccessList(grants)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(p.value for p in v) for k, v in sorted(self.grants.items())}


def parse_access(value: Mapping[str, Any] | None, owner: str) -> AccessList | None:
    """The ``access=`` option: ``{"alice": ["read"], "group:quants": "read,operate"}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: access must be a dict of user or group to permissions, such as "
            f"{{'alice': ['read', 'operate'], 'group:quants': ['read']}}"
        )
    grants: dict[str, frozenset[Permission]] = {}
    for name, perms in value.items():
        where = f"{owner}: access[{name!r}]"
        key = principal_key(name, where)
        if key in grants:
            raise DefinitionError(f"{where}: {key} is on the list twice")
        parsed = parse_permissions(perms, where)
        if not parsed:
            raise DefinitionError(f"{where}: give at least one permission, such as ['read']")
        grants[key] = parsed
    return AccessList(grants)
