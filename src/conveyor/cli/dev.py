"""``conveyor dev``: the UI, the API and the scheduler on one workspace, reloaded as its
code changes.

One command for a laptop: the server runs in this process, the daemon in a
child process (``python -m conveyor.cli.dev ...``, this module's ``__main__``),
and a watcher thread loads the code again when a file of it changes. Runs
are recorded in CONVEYOR_HOME, ``./.conveyor`` unless it is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.cli.serve import EXIT_REFUSED, host_port_options, is_loopback
from conveyor.cli.workspace import load_workspace, workspace_options

if TYPE_CHECKING:
    from conveyor.server.devdaemon import DaemonChild
    from conveyor.server.reload import CodeWatcher
    from conveyor.workspace import Workspace

# Where `conveyor dev` keeps its instance when CONVEYOR_HOME is not set: in the project.
DEV_HOME = ".conveyor"
# The exit code after Ctrl-C, as a shell gives a program that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130


def say(line: str) -> None:
    click.echo(f"conveyor dev: {line}", err=True)


@click.command("dev")
@click.argument("target", required=False)
@workspace_options
@host_port_options
def dev_command(target: str | None, module: str | None, host: str, port: int) -> None:
    """Serve the web UI and the API and run the scheduler for TARGET, reloading its code
    when its files change.

    TARGET is a workspace file, a folder of them (each .py file not starting
    with _), or -m MODULE. Runs are recorded in CONVEYOR_HOME (default
    ./.conveyor here). A change of a .py file of the workspace loads the code
    again and restarts the daemon on it; runs in flight go on. Code that does
    not load is shown in the UI (with its traceback) while the last good jobs
    stay. Ctrl-C (SIGINT) or SIGTERM stops the server, the watcher and the
    daemon, and exits 130 after Ctrl-C, 0 after SIGTERM.

    No login is asked: every caller is the local admin, so it serves a
    loopback address only (exit 2 otherwise; `conveyor server` has logins).
    """
    import signal
    import threading

    from conveyor.server.app import create_app
    from conveyor.server.devdaemon import DaemonChild
    from conveyor.server.reload import CodeWatcher, Reloader, code_of
    from conveyor.server.runner import announce_when_up, bind, make_server, stop_on_signals
    from conveyor.server.state import LoadError, ServerState, WorkspaceHolder
    from conveyor.storage.instance import Instance

    if module and target:
        raise click.UsageError("give a workspace file or folder, or -m MODULE, not both")
    if not module and not target:
        raise click.UsageError(
            "name a workspace: a file such as pipelines.py, a folder of them, or -m MODULE"
        )
    if not is_loopback(host):
        click.echo(
            f"conveyor dev: refusing to serve {host}: it asks no login, so anyone who can "
            f"reach it would be an admin. Serve 127.0.0.1 (the default), or run `conveyor "
            f"server` with users (`conveyor users add NAME --role admin`) or single sign-on.",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_REFUSED)
    code = code_of(target, module)
    home = os.environ.get("CONVEYOR_HOME") or str(Path(DEV_HOME).resolve())
    os.environ["CONVEYOR_HOME"] = home  # the daemon child and the run workers inherit it
    sock = bind(host, port)
    instance = Instance.from_env()
    processes: dict[str, str] = {}
    holder = WorkspaceHolder(lambda: _load(target, module), module or target or "")
    app = create_app(ServerState(instance, holder, processes=processes))
    server = make_server(app, host, port)

    stopped_by = stop_on_signals(server)

    named = ["-m", module] if module else [str(Path(target or "").resolve())]
    daemon = DaemonChild([sys.executable, "-m", "conveyor.cli.dev", *named], say, processes)

    # The daemon starts once the server answers: on a small machine the two starting at
    # once would make the first page wait.
    serving = threading.Event()

    def loaded(error: LoadError | None) -> None:
        if error is None:
            ws = holder.workspace
            jobs = sorted(ws.jobs) if ws is not None else []
            say(f"loaded {len(jobs)} job{'' if len(jobs) == 1 else 's'}: {', '.join(jobs)}")
            if serving.is_set():
                daemon.restart()
            return
        running = daemon.pid is not None
        daemon.not_started("the workspace's code does not load")
        say(
            f"{error.message}\n  the UI shows it with its traceback (/api/workspace); "
            + (
                "the daemon goes on with the code it had"
                if running
                else "the daemon starts once the code loads"
            )
        )

    reloader = Reloader(holder, code, [loaded])
    reloader.install(app)

    def changed(paths: list[str]) -> None:
        shown = ", ".join(os.path.relpath(p) for p in paths[:3]) + (", ..." if paths[3:] else "")
        say(f"{shown} changed: loading the code again")
        reloader.reload()

    watcher = CodeWatcher(code, changed, ignore=[Path(home)])
    processes["watcher"] = f"watching {code.describe()}"
    url: list[str] = []

    def answered(at: str) -> None:
        if at:
            url.append(at)
            say(f"{at} (Ctrl-C stops it)")
        else:
            say("the server does not answer yet; is the machine busy?")
        serving.set()
        if holder.error is None and holder.workspace is not None:
            daemon.start()

    say(f"watching {code.describe()} for changes; runs are recorded in {instance.db.safe_url}")
    try:
        if not stopped_by:
            # The first load: nothing of the workspace is imported yet, so there are no
            # modules for the reloader to forget (that scan costs a busy machine 0.1-0.2 s).
            loaded(holder.reload())
            watcher.start()
            announce_when_up(server, host, answered)
            server.run(sockets=[sock])
    finally:
        stopped = _stop_all(watcher, daemon, bool(url))
        sock.close()
        instance.close()
    if not stopped_by:
        raise click.ClickException("the server stopped by itself; see the lines above")
    interrupted = stopped_by[0] == signal.SIGINT
    why = "stopped by Ctrl-C" if interrupted else "stopped by SIGTERM"
    say(f"{why}: {_and(stopped)}")
    if interrupted:
        click.get_current_context().exit(EXIT_INTERRUPTED)


def _load(target: str | None, module: str | None) -> Workspace:
    """Load the workspace, and check what its triggers name, as the daemon will."""
    from conveyor.scheduler.daemon import check_references

    ws = load_workspace(target, module)
    check_references(ws)
    return ws


def _stop_all(watcher: CodeWatcher, daemon: DaemonChild, served: bool) -> list[str]:
    """Stop the watcher and the daemon child; what was stopped, for the last line."""
    stopped = ["the server"] if served else []
    if watcher.running:
        watcher.stop()
        stopped.append("the file watcher")
    done = daemon.close()
    if done is not None:
        stopped.append(done)
    return stopped


def _and(items: list[str]) -> str:
    if not items:
        return "nothing was running"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _daemon_child(argv: list[str]) -> None:
    """The daemon ``conveyor dev`` runs: ``conveyor daemon ARGV``, which stops when its
    parent does (see ``devdaemon.stop_with_parent``)."""
    from conveyor.cli.main import main
    from conveyor.server.devdaemon import stop_with_parent

    stop_with_parent()
    # The dev daemon's workloads are its own: they stop with it (on Ctrl-C, and when new
    # code restarts it), and the next daemon starts them on the new code.
    os.environ["CONVEYOR_STOP_WORKLOADS_WITH_DAEMON"] = "1"
    main(["daemon", *argv])


if __name__ == "__main__":
    _daemon_child(sys.argv[1:])
