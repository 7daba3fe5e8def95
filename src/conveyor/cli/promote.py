"""``conveyor promote`` and ``conveyor rollback``: move an environment's pointer to a
version that was deployed, on the local instance or through a server's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conveyor.cli.main import echo_json


def _positive(_ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(
            f"{value}: versions are numbered 1, 2, ... (see `conveyor versions`)"
        )
    return value


@click.command("promote")
@click.argument("target", metavar="[JOB_OR_WORKSPACE]", required=False)
@click.option(
    "--from",
    "from_env",
    required=True,
    metavar="ENV",
    help="The environment the version comes from.",
)
@click.option(
    "--to", "to_env", required=True, metavar="ENV", help="The environment it becomes active in."
)
@click.option(
    "--version",
    "number",
    type=int,
    callback=_positive,
    metavar="N",
    help="A version that was active in --from (default: the one active there now).",
)
@click.option("-m", "--message", help="Why, kept in the environment's history.")
@click.option("--json", "as_json", is_flag=True, help="Print the activation as JSON.")
def promote_command(
    target: str | None,
    from_env: str,
    to_env: str,
    number: int | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Make the version active in --from (or --version N) active in --to as well.

    The archive is not rebuilt: --to runs the very code --from ran. Versions are whole
    workspaces, so the whole version is promoted; a JOB named must be one of its jobs
    (a workspace file or folder is taken as the whole). It needs the promote permission
    on every job of the version and of the version it replaces, and may need a
    successful run in --from (CONVEYOR_PROMOTE_REQUIRE_SUCCESS). With a server (--url,
    CONVEYOR_URL or `conveyor login`) the server decides and records it.
    """
    from conveyor.cli.credentials import current_remote

    job = None if target is None or _is_workspace(target) else target
    remote = current_remote()
    if remote is not None:
        from conveyor.cli.client import client

        body: dict[str, Any] = {"from": from_env, "version": number, "job": job, "message": message}
        with client(remote) as api:
            answer = api.post(f"/environments/{_part(to_env)}/promote", body)
    else:
        from conveyor.execution.promotion import promote
        from conveyor.storage.instance import Instance
        from conveyor.storage.runs import local_launcher

        instance = Instance.from_env()
        try:
            record = promote(
                instance,
                to_env,
                from_env=from_env,
                version=number,
                by=local_launcher(),
                job=job,
                message=message,
            )
        finally:
            instance.close()
        answer = None if record is None else _record(record)
    _report(answer, as_json, f"{to_env} runs that version already; nothing changed")


@click.command("rollback")
@click.option("--env", "env", required=True, metavar="ENV", help="The environment to roll back.")
@click.option(
    "--to",
    "number",
    type=int,
    callback=_positive,
    metavar="N",
    help="A version that was active there (default: the one before the current one).",
)
@click.option("-m", "--message", help="Why, kept in the environment's history.")
@click.option("--json", "as_json", is_flag=True, help="Print the activation as JSON.")
def rollback_command(env: str, number: int | None, message: str | None, as_json: bool) -> None:
    """Make an earlier version of --env active again: the one before the current one,
    or --to N. Rolling back twice goes two versions back. Needs the promote permission
    on the jobs of both versions."""
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        from conveyor.cli.client import client

        with client(remote) as api:
            answer = api.post(
                f"/environments/{_part(env)}/rollback", {"to": number, "message": message}
            )
    else:
        from conveyor.execution.promotion import rollback
        from conveyor.storage.instance import Instance
        from conveyor.storage.runs import local_launcher

        instance = Instance.from_env()
        try:
            record = rollback(instance, env, to=number, by=local_launcher(), message=message)
        finally:
            instance.close()
        answer = None if record is None else _record(record)
    _report(answer, as_json, f"version {number} is active in {env} already; nothing changed")


def _is_workspace(target: str) -> bool:
    return target.endswith(".py") or "/" in target or Path(target).exists()


def _part(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _record(record: Any) -> dict[str, Any]:
    return {
        "environment": record.environment,
        "version": record.version,
        "action": record.action,
        "from_environment": record.from_environment,
        "previous_version": record.previous_version,
        "by": record.by,
        "message": record.message,
    }


def _report(answer: dict[str, Any] | None, as_json: bool, unchanged: str) -> None:
    if as_json:
        echo_json(answer)
        return
    if answer is None:
        click.echo(unchanged)
        return
    how = (
        "promoted from " + answer["from_environment"]
        if answer["from_environment"]
        else answer["action"]
    )
    was = answer.get("previous_version")
    click.echo(
        f"{answer['environment']}: version {answer['version']} active ({how}"
        f"{f'; was {was}' if was else ''})"
    )
