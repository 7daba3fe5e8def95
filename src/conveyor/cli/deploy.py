"""``conveyor deploy`` and ``conveyor versions``: the workspace's code as immutable
versions, each environment running the one active there."""

from __future__ import annotations

from typing import Any

import click

from conveyor.cli.main import echo_json


@click.command("deploy")
@click.argument("target", default=".")
@click.option(
    "--env",
    "environment",
    default="dev",
    show_default=True,
    help="The environment whose active version it becomes (CONVEYOR_ENVIRONMENTS).",
)
@click.option("-m", "--message", default=None, help="What this version changes.")
@click.option(
    "--requirements",
    default=None,
    help="A requirements file (default: requirements.txt in the packaged folder, if any).",
)
def deploy_command(
    target: str, environment: str, message: str | None, requirements: str | None
) -> None:
    """Package the workspace TARGET (a .py file or a folder; default: this folder) as a
    version and make it active in an environment. Identical code makes no new version."""
    from conveyor.execution.deploy import deploy
    from conveyor.storage.instance import Instance

    done = deploy(
        Instance.from_env(), target, environment, message=message, requirements=requirements
    )
    click.echo(done.summary())


@click.command("versions")
@click.option("--env", "environment", default=None, help="Only versions once active here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions_command(environment: str | None, as_json: bool) -> None:
    """List the deployed versions, newest first, and where each is active."""
    from conveyor.execution.deploy import versions
    from conveyor.storage.deployments import environment_names
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    found = versions(environment, instance=instance)
    active: dict[int, list[str]] = {}
    for env in instance.deployments.environments(environment_names()):
        if env.active_version is not None:
            active.setdefault(env.active_version, []).append(env.name)
    rows: list[dict[str, Any]] = [
        {
            "number": v.number,
            "hash": v.hash,
            "created_at": v.created_at.isoformat() if v.created_at else None,
            "created_by": v.created_by,
            "message": v.message,
            "entry": v.entry,
            "jobs": v.jobs,
            "diff": v.diff,
            "requirements_hash": v.requirements_hash,
            "git": v.git,
            "active_in": active.get(v.number, []),
        }
        for v in found
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        where = f" to {environment}" if environment else ""
        click.echo(f"no version deployed{where} yet; deploy one with `conveyor deploy FILE`")
        return
    from rich.table import Table

    from conveyor.cli.output import console, when

    table = Table(box=None, header_style="bold")
    for col in ("VERSION", "HASH", "WHEN", "WHO", "MESSAGE", "JOBS", "ACTIVE IN"):
        table.add_column(col)
    for v, r in zip(found, rows, strict=True):
        table.add_row(
            str(v.number),
            v.hash[:12],
            when(v.created_at),
            v.created_by or "-",
            (v.message or "").partition("\n")[0],
            str(len(v.jobs)),
            ", ".join(r["active_in"]) or "-",
        )
    console().print(table)
