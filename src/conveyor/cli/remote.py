"""``conveyor login`` and ``conveyor logout``: a remote server's token, kept for later
commands in the user's credentials file (``credentials.credentials_path``, mode 0600)."""

from __future__ import annotations

import sys

import click

from conveyor.cli.credentials import TOKEN_PREFIX
from conveyor.errors import ConfigError


@click.command("login")
@click.argument("url")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read the token from stdin (e.g. from a secrets manager) instead of a prompt.",
)
def login_command(url: str, token_stdin: bool) -> None:
    """Sign in to the Conveyor server at URL with an API token, and make it the default.

    Make the token with `conveyor tokens create` on the server's instance, or on
    the server's page /account/tokens. The token is checked (GET /api/me), then
    stored for URL in $XDG_CONFIG_HOME/conveyor/credentials.json (default
    ~/.config/conveyor), a file only you may read. From then on run, rerun,
    runs, logs, trigger, backfill and schedules talk to URL; --local (or
    another --url) overrides that, `conveyor logout` undoes it.
    """
    from conveyor.cli.client import Client
    from conveyor.cli.credentials import Remote, load_credentials, save_credentials, server_url

    base = server_url(url)
    token = _read_token(token_stdin)
    with Client(Remote(base, token)) as api:
        me = api.me()
    data = load_credentials()
    data["servers"][base] = {"token": token}
    data["default"] = base
    path = save_credentials(data)
    role = me.get("role") or "no role"
    click.echo(f"signed in to {base} as {me.get('name', '?')} ({role})")
    click.echo(f"token saved in {path}; later commands talk to {base}", err=True)


def _read_token(from_stdin: bool) -> str:
    """The token: the global --token or CONVEYOR_TOKEN, stdin, or a hidden prompt."""
    import os

    root = click.get_current_context().find_root().params
    given = root.get("token") or os.environ.get("CONVEYOR_TOKEN")
    if from_stdin:
        token = sys.stdin.readline().strip()
    elif given:
        token = given
    elif sys.stdin.isatty():
        token = click.prompt("API token", hide_input=True).strip()
    else:
        raise click.UsageError(
            "no terminal to ask for the token in: pipe it with --token-stdin, or set CONVEYOR_TOKEN"
        )
    if not token:
        raise ConfigError("no token given: paste the token `conveyor tokens create` printed")
    if not token.startswith(TOKEN_PREFIX) or any(c.isspace() for c in token):
        raise ConfigError(
            f"that is not an API token: tokens start with {TOKEN_PREFIX!r} (make one with "
            f"`conveyor tokens create` or on the server's page /account/tokens)"
        )
    return token


@click.command("logout")
@click.argument("url", required=False)
def logout_command(url: str | None) -> None:
    """Forget the token stored for URL (default: the default server of `conveyor login`).

    The token itself stays valid on the server until it expires or is revoked
    (`conveyor tokens revoke ID`, or the page /account/tokens).
    """
    from conveyor.cli.credentials import (
        load_credentials,
        save_credentials,
        server_url,
        token_id_of,
    )

    data = load_credentials()
    base = server_url(url) if url else data.get("default")
    if base is None:
        click.echo("not signed in to any server: nothing to forget")
        return
    entry = data["servers"].pop(base, None)
    if data.get("default") == base:
        data["default"] = None
    if entry is None:
        click.echo(f"not signed in to {base}: nothing to forget")
        return
    save_credentials(data)
    token_id = token_id_of(entry["token"])
    click.echo(f"signed out of {base}")
    if token_id:
        click.echo(
            f"token {token_id} stays valid until it expires; to end it: "
            f"conveyor tokens revoke {token_id}",
            err=True,
        )
