"""``conveyor users`` and ``conveyor groups``: who may sign in to the server, with which
instance role, and the groups that access lists name.

These commands act on the instance itself (CONVEYOR_HOME, CONVEYOR_DATABASE_URL), as
whoever may open its database: run them where the server's instance is. Each change
is written to the audit log as ``local:<OS user>``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json
from conveyor.definitions.access import Role

if TYPE_CHECKING:
    from conveyor.storage.identity import User
    from conveyor.storage.instance import Instance

ROLES = click.Choice([r.value for r in Role], case_sensitive=False)


def instance() -> Instance:
    from conveyor.storage.instance import Instance

    return Instance.from_env()


def audit(inst: Instance, action: str, target: str, **detail: Any) -> None:
    """Append the change to the audit log, as the OS user who ran the command."""
    from conveyor.storage.runs import local_launcher

    inst.audit.append(local_launcher(), action, target, detail=detail or None)


def read_password(from_stdin: bool, user: str) -> str:
    """The new password: the first line of stdin, or typed twice at a prompt."""
    from conveyor.storage.identity import MIN_PASSWORD

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: stdin held no password (an empty line)")
        password = line
    else:
        password = click.prompt(
            f"password for {user}", hide_input=True, confirmation_prompt=True, err=True
        )
    if len(password) < MIN_PASSWORD:
        raise click.UsageError(
            f"a password must be at least {MIN_PASSWORD} characters long; choose a longer one"
        )
    return password


def user_row(u: User, tokens: int) -> dict[str, Any]:
    return {
        "name": u.name,
        "role": u.role.value,
        "email": u.email,
        "groups": list(u.groups),
        "password": u.has_password,
        "oidc": u.oidc_subject is not None,
        "disabled": u.disabled,
        "active_tokens": tokens,
    }


# -- users ---------------------------------------------------------------------------------


@click.group("users")
def users_group() -> None:
    """Users of the server: add, list, remove, set their role or password, disable them."""


@users_group.command("add")
@click.argument("name")
@click.option(
    "-r",
    "--role",
    type=ROLES,
    default=Role.VIEWER.value,
    show_default=True,
    help="The instance role: what the user may do on jobs without an access list.",
)
@click.option("--email", metavar="E", help="The user's email address.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
@click.option(
    "--no-password",
    is_flag=True,
    help="No password: the user signs in through OpenID Connect only.",
)
def add_user(
    name: str, role: str, email: str | None, password_stdin: bool, no_password: bool
) -> None:
    """Add user NAME; asks for the password twice (at least 8 characters)."""
    from conveyor.storage.identity import check_name

    if password_stdin and no_password:
        raise click.UsageError("give --password-stdin or --no-password, not both")
    inst = instance()
    check_name(name, "user")
    if inst.identity.user(name) is not None:
        raise click.UsageError(
            f"user {name!r} exists already; change it with `conveyor users set-role {name} "
            f"ROLE` or `conveyor users set-password {name}`"
        )
    password = None if no_password else read_password(password_stdin, name)
    user = inst.identity.add_user(name, role, password=password, email=email)
    audit(inst, "user add", name, role=user.role.value, password=password is not None)
    how = "signs in with OpenID Connect only" if password is None else "may sign in"
    click.echo(f"user {name} added, role {user.role}: {how}")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_users(as_json: bool) -> None:
    """List the users: role, groups, how they sign in, and their active API tokens."""
    inst = instance()
    active: dict[str, int] = {}
    for t in inst.identity.tokens():
        if t.state() == "active":
            active[t.user_name] = active.get(t.user_name, 0) + 1
    rows = [user_row(u, active.get(u.name, 0)) for u in inst.identity.users()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no users; add one with `conveyor users add NAME --role admin`")
        return
    from rich.table import Table

    from conveyor.cli.output import console

    table = Table(box=None, header_style="bold")
    for col in ("NAME", "ROLE", "GROUPS", "SIGNS IN WITH", "TOKENS", "EMAIL", "STATE"):
        table.add_column(col)
    for r in rows:
        ways = [w for w, on in (("password", r["password"]), ("oidc", r["oidc"])) if on]
        table.add_row(
            r["name"],
            r["role"],
            ", ".join(r["groups"]) or "-",
            ", ".join(ways) or "oidc (not yet)",
            str(r["active_tokens"]),
            r["email"] or "-",
            "[red]disabled[/]" if r["disabled"] else "active",
        )
    console().print(table)


@users_group.command("remove")
@click.argument("name")
def remove_user(name: str) -> None:
    """Remove user NAME, with its group memberships, API tokens and sessions."""
    inst = instance()
    inst.identity.remove_user(name)
    audit(inst, "user remove", name)
    click.echo(f"user {name} removed, with its tokens and sessions")


@users_group.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLES, metavar="ROLE")
def set_role(name: str, role: str) -> None:
    """Give user NAME the instance role ROLE (viewer, operator, editor or admin)."""
    inst = instance()
    before = inst.identity.require_user(name).role
    user = inst.identity.set_role(name, role)
    audit(inst, "user set role", name, role=user.role.value, was=before.value)
    click.echo(f"user {name}: role {user.role} (was {before})")


@users_group.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
def set_password(name: str, password_stdin: bool) -> None:
    """Set user NAME's password; asks for it twice (at least 8 characters)."""
    inst = instance()
    inst.identity.require_user(name)
    inst.identity.set_password(name, read_password(password_stdin, name))
    audit(inst, "user set password", name)
    click.echo(f"user {name}: password set")


@users_group.command("disable")
@click.argument("name")
def disable_user(name: str) -> None:
    """Stop user NAME from signing in: its sessions end and its API tokens stop working."""
    inst = instance()
    inst.identity.set_disabled(name, True)
    audit(inst, "user disable", name)
    click.echo(f"user {name} disabled: it cannot sign in, and its tokens are refused")


@users_group.command("enable")
@click.argument("name")
def enable_user(name: str) -> None:
    """Let user NAME sign in again (its unexpired, unrevoked tokens work again)."""
    inst = instance()
    inst.identity.set_disabled(name, False)
    audit(inst, "user enable", name)
    click.echo(f"user {name} enabled")


# -- groups --------------------------------------------------------------------------------


@click.group("groups")
def groups_group() -> None:
    """Groups of users, which access lists name as group:NAME."""


@groups_group.command("add")
@click.argument("name")
def add_group(name: str) -> None:
    """Add group NAME (empty; add members with `conveyor groups add-member`)."""
    inst = instance()
    inst.identity.add_group(name)
    audit(inst, "group add", name)
    click.echo(f"group {name} added; access lists name it group:{name}")


@groups_group.command("remove")
@click.argument("name")
def remove_group(name: str) -> None:
    """Remove group NAME (its members stay users)."""
    inst = instance()
    inst.identity.remove_group(name)
    audit(inst, "group remove", name)
    click.echo(f"group {name} removed")


@groups_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_groups(as_json: bool) -> None:
    """List the groups and their members."""
    groups = instance().identity.groups()
    if as_json:
        echo_json([{"name": g, "members": m} for g, m in groups.items()])
        return
    if not groups:
        click.echo("no groups; add one with `conveyor groups add NAME`")
    for name, members in groups.items():
        click.echo(f"{name}: {', '.join(members) if members else '(no members)'}")


@groups_group.command("add-member")
@click.argument("group")
@click.argument("user")
def add_member(group: str, user: str) -> None:
    """Make USER a member of GROUP."""
    inst = instance()
    inst.identity.add_member(group, user)
    audit(inst, "group add member", group, user=user)
    click.echo(f"{user} is a member of group {group}")


@groups_group.command("remove-member")
@click.argument("group")
@click.argument("user")
def remove_member(group: str, user: str) -> None:
    """Take USER out of GROUP."""
    inst = instance()
    inst.identity.remove_member(group, user)
    audit(inst, "group remove member", group, user=user)
    click.echo(f"{user} is no longer a member of group {group}")
