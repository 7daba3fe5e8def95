"""The ``conveyor`` command: a click group whose subcommands load on first use.

Errors print one line (``error: ...``); ``--debug`` (or ``CONVEYOR_DEBUG=1``)
prints the traceback too. Exit codes: 0 success, 1 a run failed or an
unexpected error, 2 bad usage (arguments, config, a bad CONVEYOR_HOME or
CONVEYOR_DATABASE_URL, workspace, unknown ids).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from conveyor import __version__

# command name -> (module, attribute): imported only when that command runs.
COMMANDS = {
    "run": ("conveyor.cli.run", "run_command"),
    "rerun": ("conveyor.cli.run", "rerun_command"),
    "runs": ("conveyor.cli.runs", "runs_group"),
    "logs": ("conveyor.cli.logs", "logs_command"),
    "jobs": ("conveyor.cli.jobs", "jobs_group"),
    "schedules": ("conveyor.cli.schedules", "schedules_group"),
    "daemon": ("conveyor.cli.daemon", "daemon_command"),
    "trigger": ("conveyor.cli.daemon", "trigger_command"),
    "backfill": ("conveyor.cli.daemon", "backfill_command"),
    "pools": ("conveyor.cli.pools", "pools_group"),
    "server": ("conveyor.cli.serve", "server_command"),
    "db": ("conveyor.cli.serve", "db_group"),
    "dev": ("conveyor.cli.dev", "dev_command"),
    "deploy": ("conveyor.cli.deploy", "deploy_command"),
    "versions": ("conveyor.cli.deploy", "versions_command"),
    "users": ("conveyor.cli.users", "users_group"),
    "groups": ("conveyor.cli.users", "groups_group"),
    "tokens": ("conveyor.cli.tokens", "tokens_group"),
    "access": ("conveyor.cli.access", "access_group"),
    "secrets": ("conveyor.cli.secrets", "secrets_group"),
    "services": ("conveyor.cli.services", "services_group"),
    "login": ("conveyor.cli.remote", "login_command"),
    "logout": ("conveyor.cli.remote", "logout_command"),
    "promote": ("conveyor.cli.promote", "promote_command"),
    "rollback": ("conveyor.cli.promote", "rollback_command"),
}
SUMMARIES = {
    "run": "Run a job of a workspace file or module, recorded in the instance.",
    "rerun": "Run a recorded run again, from its failures or in full.",
    "runs": "List, show, cancel and delete recorded runs.",
    "logs": "Print the stdout or stderr of a run's tasks.",
    "jobs": "List the jobs of a workspace.",
    "schedules": "List the timed triggers of a workspace and their next fire times.",
    "daemon": "Run the scheduler: fire triggers, start queued runs, end dead ones.",
    "trigger": "Queue a run of a job, or of the jobs with a tag: trigger.",
    "backfill": "Queue one run per missing interval of a job.",
    "pools": "Set and list concurrency pools shared across jobs.",
    "server": "Serve the web UI and REST API (beside a daemon) for production.",
    "db": "Upgrade the instance's database schema.",
    "dev": "Serve the UI and run the scheduler on a workspace, reloading it as it changes.",
    "deploy": "Package a workspace as a version and make it active in an environment.",
    "versions": "List the deployed versions and where each is active.",
    "users": "Add, list and remove users, and set their roles.",
    "groups": "Add and list groups, and their members.",
    "tokens": "Create, list and revoke API tokens.",
    "access": "Show, grant and revoke who may do what to a job.",
    "secrets": "Set, list and delete secrets, stored encrypted.",
    "services": "List, start, stop and restart services and apps; print their logs.",
    "login": "Sign in to a remote Conveyor server with an API token.",
    "logout": "Forget the token of a remote Conveyor server.",
    "promote": "Make the version active in one environment active in the next.",
    "rollback": "Make an earlier version of an environment active again.",
}

EXIT_FAILURE = 1
EXIT_USAGE = 2


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        cmd: click.Command = getattr(importlib.import_module(target[0]), target[1])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conveyor")
@click.option("--debug", is_flag=True, help="Print tracebacks of errors.")
@click.option(
    "--url",
    metavar="URL",
    help="Talk to the Conveyor server at URL (default: CONVEYOR_URL, or the server of "
    "`conveyor login`).",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help="The API token to show the server (default: CONVEYOR_TOKEN, or the one "
    "`conveyor login` stored).",
)
@click.option(
    "--local", is_flag=True, help="Use the local instance even when a server is configured."
)
def cli(debug: bool, url: str | None, token: str | None, local: bool) -> None:
    """Conveyor: run, schedule and watch jobs written as Python code.

    Runs are recorded in the instance at CONVEYOR_HOME (default ~/.conveyor),
    on SQLite there unless CONVEYOR_DATABASE_URL names a PostgreSQL database.

    With a server (--url, CONVEYOR_URL, or `conveyor login URL`), the commands
    run, rerun, runs, logs, trigger, backfill and schedules talk to it through
    its REST API instead, on the jobs of the server's workspace.
    """
    if debug:
        os.environ["CONVEYOR_DEBUG"] = "1"


def _debug() -> bool:
    return os.environ.get("CONVEYOR_DEBUG") == "1" or "--debug" in sys.argv[1:]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    from conveyor.errors import ConveyorError

    try:
        rv = cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except click.exceptions.Abort:  # click's form of Ctrl-C
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except ConveyorError as e:
        # A remote server's own failure is not the caller's (RemoteError.exit_code).
        _fail(e, getattr(e, "exit_code", EXIT_USAGE))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        _fail(e, EXIT_FAILURE, with_type=True)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(error: BaseException, code: int, with_type: bool = False) -> None:
    if _debug():
        import traceback

        traceback.print_exception(error)
    text = f"{type(error).__name__}: {error}" if with_type else str(error)
    hint = "" if _debug() else " (--debug shows the traceback)" if with_type else ""
    click.secho(f"error: {text}{hint}", fg="red", err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))
