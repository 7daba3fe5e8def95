"""``conveyor server`` (the UI and API for production) and ``conveyor db upgrade``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from conveyor.cli.workspace import load_workspace, workspace_options

if TYPE_CHECKING:
    from conveyor.server.auth_settings import AuthSettings
    from conveyor.storage.instance import Instance

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
# The exit code after Ctrl-C, as a shell gives a program that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130
# The exit code of a server that will not start as asked (as for a usage error).
EXIT_REFUSED = 2


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


NO_AUTH = (
    "conveyor server: refusing to serve {host} without access control: anyone who can "
    "reach it would be an admin. Either add a user (its first admin) with\n"
    "    conveyor users add NAME --role admin\n"
    "(it asks for a password), or set up single sign-on with CONVEYOR_OIDC_ISSUER, "
    "CONVEYOR_OIDC_CLIENT_ID and CONVEYOR_OIDC_CLIENT_SECRET; or serve 127.0.0.1 only "
    "(--host 127.0.0.1), where no login is needed."
)


def auth_settings(instance: Instance, host: str) -> AuthSettings:
    """Login when the instance has a user or single sign-on is set up, else local (no
    login), allowed on a loopback address only: ``click.exceptions.Exit`` (2) saying
    how to set up access control otherwise."""
    from conveyor.server.auth_settings import AuthSettings, OidcSettings

    # A ConfigError (a half-set CONVEYOR_OIDC_*, an issuer not on https) is a usage
    # error the command line prints as one line, exit 2: at start, not at the first login.
    oidc = OidcSettings.from_env()
    if oidc is not None:
        from conveyor.server.oidc import check_issuer_url

        check_issuer_url(oidc.issuer)
    if oidc is not None or instance.identity.count_users() > 0:
        return AuthSettings(mode="login", oidc=oidc)
    if not is_loopback(host):
        click.echo(NO_AUTH.format(host=host), err=True)
        raise click.exceptions.Exit(EXIT_REFUSED)
    return AuthSettings(mode="local")


def host_port_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORT,
        show_default=True,
        help="TCP port to serve on (0: any free port).",
    )(fn)
    fn = click.option(
        "--host",
        default=DEFAULT_HOST,
        show_default=True,
        help="Address to bind; 0.0.0.0 serves every network (needs users or single "
        "sign-on: see `conveyor users add`).",
    )(fn)
    return fn


@click.command("server")
@click.argument("target", required=False)
@workspace_options
@host_port_options
def server_command(target: str | None, module: str | None, host: str, port: int) -> None:
    """Serve the web UI and the REST API for the jobs of TARGET (or -m MODULE).

    Reads the instance of CONVEYOR_HOME / CONVEYOR_DATABASE_URL, whose schema
    must be current (`conveyor db upgrade`). Runs are started by `conveyor
    daemon`, which runs beside it against the same database. Exits 130 after
    Ctrl-C, 0 after SIGTERM.

    Callers sign in (a password, single sign-on, or an API token) once the
    instance has a user (`conveyor users add`) or CONVEYOR_OIDC_ISSUER is set.
    Without either, no login is asked and the server refuses any address but
    a loopback one (exit 2).
    """
    import signal

    from conveyor.server.app import create_app
    from conveyor.server.runner import serve
    from conveyor.server.state import ServerState, WorkspaceHolder
    from conveyor.storage.instance import Instance

    instance = Instance.from_env(migrate=False)
    try:
        auth = auth_settings(instance, host)
    except BaseException:
        instance.close()
        raise
    holder = WorkspaceHolder(lambda: load_workspace(target, module), module or target or "")
    error = holder.reload()
    if error is not None:
        instance.close()
        raise click.ClickException(error.message)
    try:
        stopped_by = serve(
            create_app(ServerState(instance, holder, auth=auth)),
            host,
            port,
            announce="conveyor server" + (" (login required)" if auth.login_required else ""),
        )
    finally:
        instance.close()
    if stopped_by is None:
        raise click.ClickException("the server stopped by itself; see the lines above")
    interrupted = stopped_by == signal.SIGINT
    click.echo(f"conveyor server: stopped by {'Ctrl-C' if interrupted else 'SIGTERM'}", err=True)
    if interrupted:
        click.get_current_context().exit(EXIT_INTERRUPTED)


@click.group("db")
def db_group() -> None:
    """The instance's database: its schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Bring the database of CONVEYOR_HOME / CONVEYOR_DATABASE_URL to the current schema."""
    from conveyor.storage.db import HEAD_REVISION
    from conveyor.storage.instance import Instance

    instance = Instance.from_env(migrate=None)
    try:
        before = instance.db.schema_revision()
        instance.db.migrate()
        after = instance.db.schema_revision()
    finally:
        instance.close()
    where = instance.db.safe_url
    if before == after:
        click.echo(f"{where}: schema {after} is current; nothing to do")
    else:
        click.echo(f"{where}: schema {before or 'none'} -> {after} (current: {HEAD_REVISION})")
