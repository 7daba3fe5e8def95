"""``conveyor server`` (the UI and API for production) and ``conveyor db upgrade``."""

from __future__ import annotations

import click

from conveyor.cli.workspace import load_workspace, workspace_options

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
# The exit code after Ctrl-C, as a shell gives a program that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130


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
        help="Address to bind; 0.0.0.0 serves every network (no access control yet).",
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
    """
    import signal

    from conveyor.server.app import create_app
    from conveyor.server.runner import serve
    from conveyor.server.state import ServerState, WorkspaceHolder
    from conveyor.storage.instance import Instance

    instance = Instance.from_env(migrate=False)
    holder = WorkspaceHolder(lambda: load_workspace(target, module), module or target or "")
    error = holder.reload()
    if error is not None:
        raise click.ClickException(error.message)
    try:
        stopped_by = serve(
            create_app(ServerState(instance, holder)), host, port, announce="conveyor server"
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
