"""``conveyor access``: who may do what to a job. A job's code may declare its list
(``@job(access={...})``); an admin's grant replaces the code's for that principal,
until it is revoked (the code's list holds again).

Like ``conveyor users``, these commands act on the instance itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json
from conveyor.cli.users import audit, instance
from conveyor.cli.workspace import load_workspace, workspace_options
from conveyor.definitions.access import Permission, parse_permissions, principal_key

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance

NONE = "none"
PERMISSIONS = ", ".join(p.value for p in Permission)


@click.group("access")
def access_group() -> None:
    """Show, grant and revoke who may do what to a job."""


@access_group.command("show")
@click.argument("job_name", metavar="JOB")
@click.argument("target", required=False)
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_access(job_name: str, target: str | None, module: str | None, as_json: bool) -> None:
    """Show JOB's access list: the code's (from TARGET or -m MODULE) with an admin's changes.

    Without TARGET or -m MODULE only the admin's changes are shown.
    """
    from conveyor.storage.access import effective

    declared = None
    with_code = bool(target or module)
    if with_code:
        ws = load_workspace(target, module)
        job = ws.jobs.get(job_name)
        if job is None:
            names = ", ".join(sorted(ws.jobs)) or "none"
            raise click.UsageError(f"no job {job_name!r} in {target or module}; its jobs: {names}")
        declared = job.access
    grants = effective(declared, instance().access.changes(job_name))
    rows: list[dict[str, Any]] = [
        {
            "principal": g.principal,
            "permissions": sorted(p.value for p in g.permissions),
            "source": g.source,
            "code": sorted(p.value for p in g.code) if g.code is not None else None,
        }
        for g in grants or []
    ]
    if as_json:
        echo_json({"job": job_name, "has_list": grants is not None, "grants": rows})
        return
    if grants is None:
        if with_code:
            click.echo(
                f"{job_name} has no access list: each user's instance role says what they may "
                f"do (viewer read; operator also operate; editor also write; admin all)"
            )
        else:
            click.echo(
                f"no admin changes to {job_name}'s access list; give the workspace (access "
                f"show {job_name} FILE, or -m MODULE) to see its code's list too"
            )
        return
    from rich.table import Table

    from conveyor.cli.output import console

    table = Table(box=None, header_style="bold")
    for col in ("PRINCIPAL", "PERMISSIONS", "FROM"):
        table.add_column(col)
    for r in rows:
        source = r["source"]
        if source == "admin" and r["code"] is not None:
            source = f"admin (the code gives {', '.join(r['code'])})"
        table.add_row(r["principal"], ", ".join(r["permissions"]) or "[dim]none[/]", source)
    console().print(table)
    if not with_code:
        click.echo(
            f"(the admin's changes only: give the workspace, access show {job_name} FILE, "
            f"to see the code's list too)"
        )


@access_group.command("grant")
@click.argument("job_name", metavar="JOB")
@click.argument("principal")
@click.argument("perms", metavar="PERMS")
def grant_access(job_name: str, principal: str, perms: str) -> None:
    """Give PRINCIPAL exactly PERMS on JOB, in place of what the code gives it.

    PRINCIPAL is a user (alice, user:alice) or a group (group:quants). PERMS is a
    comma-separated list of read, operate, write, promote, access; `none` takes away
    what the code gives. Admins may do everything on every job regardless.
    """
    key = _principal(principal)
    chosen = _permissions(perms)
    inst = instance()
    _check_principal(inst, key)
    had_list = job_name in inst.access.all()
    from conveyor.storage.runs import local_launcher

    inst.access.set(job_name, key, chosen, by=local_launcher())
    names = sorted(p.value for p in chosen)
    audit(inst, "access grant", job_name, principal=key, permissions=names)
    click.echo(
        f"{key} on {job_name}: {', '.join(names) or 'nothing (the code grant is taken away)'}"
    )
    if not had_list:
        click.echo(
            f"note: if {job_name}'s code declares no access list, it has one now: only the "
            f"principals on it (and admins) may see or act on the job",
            err=True,
        )


@access_group.command("revoke")
@click.argument("job_name", metavar="JOB")
@click.argument("principal")
def revoke_access(job_name: str, principal: str) -> None:
    """Undo an admin's grant to PRINCIPAL on JOB: the code's list holds for it again.

    To take away what the code gives, use `conveyor access grant JOB PRINCIPAL none`.
    """
    key = _principal(principal)
    inst = instance()
    if not inst.access.reset(job_name, key):
        raise click.UsageError(
            f"{key} has no admin grant on {job_name} to revoke (see `conveyor access show "
            f"{job_name} FILE`); to take away what the code gives, use `conveyor access grant "
            f"{job_name} {key} none`"
        )
    audit(inst, "access revoke", job_name, principal=key)
    click.echo(f"{key} on {job_name}: back to the code's list")


def _principal(value: str) -> str:
    from conveyor.errors import DefinitionError

    try:
        return principal_key(value, "PRINCIPAL")
    except DefinitionError as e:
        raise click.UsageError(str(e)) from None


def _permissions(value: str) -> frozenset[Permission]:
    from conveyor.errors import DefinitionError

    if value.strip().lower() == NONE:
        return frozenset()
    try:
        chosen = parse_permissions(value, "PERMS")
    except DefinitionError as e:
        raise click.UsageError(str(e)) from None
    if not chosen:
        raise click.UsageError(
            f"PERMS: give permissions such as read,operate (of {PERMISSIONS}), or `none` "
            f"to take away what the code gives"
        )
    return chosen


def _check_principal(inst: Instance, key: str) -> None:
    """The user or group must exist: a typo would grant nobody anything, silently."""
    kind, _, name = key.partition(":")
    if kind == "user" and inst.identity.user(name) is None:
        raise click.UsageError(f"no user {name!r}; list them with `conveyor users list`")
    if kind == "group" and name not in inst.identity.groups():
        raise click.UsageError(
            f"no group {name!r}; list them with `conveyor groups list`, or add it with "
            f"`conveyor groups add {name}`"
        )
