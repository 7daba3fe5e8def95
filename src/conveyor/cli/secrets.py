"""``conveyor secrets``: the instance's secrets, stored encrypted; jobs refer to them as
``Secret("name")``.

A value is never an argument (it would stay in the shell's history and show
in the process list): it comes from a hidden prompt, or from stdin with
``--value-stdin``. No command prints a value.
"""

from __future__ import annotations

import sys
from datetime import datetime

import click

from conveyor.cli.main import echo_json


@click.group("secrets")
def secrets_group() -> None:
    """Secrets, encrypted at rest: jobs use them as Secret("NAME") in resources and config.

    The key is CONVEYOR_SECRET_KEY, or else the file secret.key in CONVEYOR_HOME
    (made with mode 0600 on first use). Every change is in the audit log.
    """


def _name(_ctx: click.Context, _param: click.Parameter, name: str) -> str:
    from conveyor.definitions.secrets import check_secret_name
    from conveyor.errors import ConfigError

    try:
        return check_secret_name(name)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None


def _actor() -> str:
    from conveyor.storage.runs import local_launcher

    return local_launcher()


@secrets_group.command("set")
@click.argument("name", callback=_name)
@click.option(
    "--value-stdin",
    is_flag=True,
    help="Read the value from stdin (all of it, but for one final newline) instead of "
    "a hidden prompt.",
)
def set_secret(name: str, value_stdin: bool) -> None:
    """Set secret NAME (asking for its value; never give it as an argument)."""
    from conveyor.storage.instance import Instance
    from conveyor.storage.redact import MIN_LENGTH

    if value_stdin:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    elif sys.stdin.isatty():
        value = click.prompt(
            f"value of {name}", hide_input=True, confirmation_prompt=True, show_default=False
        )
    else:
        raise click.UsageError(
            "no terminal to ask for the value on; pipe it in with --value-stdin, e.g. "
            f'`printf %s "$VALUE" | conveyor secrets set {name} --value-stdin`'
        )
    if not value:
        raise click.UsageError(f"secret {name}: the value is empty; give a value")
    instance = Instance.from_env()
    existed = any(s.name == name for s in instance.secrets.names())
    instance.secrets.set(name, value, by=_actor())
    click.echo(f"secret {name} {'updated' if existed else 'set'}")
    if len(value) < MIN_LENGTH:
        click.echo(
            f"note: values shorter than {MIN_LENGTH} characters are not masked in run logs",
            err=True,
        )


@secrets_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_secrets(as_json: bool) -> None:
    """List the secrets' names and when they were set (never their values)."""
    from conveyor.cli.output import when
    from conveyor.storage.instance import Instance

    infos = Instance.from_env().secrets.names()
    if as_json:
        echo_json(
            [
                {
                    "name": s.name,
                    "created_at": s.created_at,
                    "updated_at": s.updated_at,
                    "updated_by": s.updated_by,
                }
                for s in infos
            ]
        )
        return
    if not infos:
        click.echo("no secrets; set one with `conveyor secrets set NAME`")
        return
    width = max(len(s.name) for s in infos)
    click.echo(f"{'NAME':<{width}}  {'UPDATED':<19}  {'CREATED':<19}  BY")
    for s in infos:
        updated = when(datetime.fromtimestamp(s.updated_at))
        created = when(datetime.fromtimestamp(s.created_at))
        click.echo(f"{s.name:<{width}}  {updated:<19}  {created:<19}  {s.updated_by}")


@secrets_group.command("delete")
@click.argument("name", callback=_name)
def delete_secret(name: str) -> None:
    """Delete secret NAME (runs that refer to it then fail before their first task)."""
    from conveyor.storage.instance import Instance

    Instance.from_env().secrets.delete(name, by=_actor())
    click.echo(f"secret {name} deleted")
