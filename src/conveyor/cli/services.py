"""``conveyor services``: list, start, stop and restart services and apps, and read their logs.

The commands change what a person asked for (``desired``) in the instance; the
supervisor of the daemon that owns each workload acts on it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json

if TYPE_CHECKING:
    from conveyor.storage.instance import Instance
    from conveyor.storage.workloads import WorkloadRecord

# How long `restart` waits for the supervisor to stop a workload (its grace is 10 s).
RESTART_WAIT = 30.0


@click.group("services")
def services_group() -> None:
    """Services and apps: what runs, on which port, and their logs."""


def _instance() -> Instance:
    from conveyor.storage.instance import Instance

    return Instance.from_env()


def _uptime(record: WorkloadRecord) -> float | None:
    if record.started_at is None or record.state not in ("running", "unhealthy", "starting"):
        return None
    return max(0.0, time.time() - record.started_at)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _row(r: WorkloadRecord) -> dict[str, Any]:
    return {
        "name": r.name,
        "kind": r.kind,
        "desired": r.desired,
        "state": r.state,
        "host": r.host,
        "port": r.port,
        "pid": r.pid,
        "restarts": r.restarts,
        "uptime": _uptime(r),
        "health": r.health,
        "last_error": r.last_error,
    }


@services_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_services(as_json: bool) -> None:
    """List the services and apps with their state, port, pid, restarts, uptime and health."""
    rows = [_row(r) for r in _instance().workloads.all()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no services or apps; declare one (Service(...), App(...)) in a workspace")
        click.echo("and run `conveyor daemon` or `conveyor dev` on it")
        return
    header = ("NAME", "KIND", "STATE", "PORT", "PID", "RESTARTS", "UPTIME", "HEALTH")
    table = [
        (
            r["name"],
            r["kind"],
            r["state"] + (" (stop asked)" if r["desired"] == "stopped" and r["pid"] else ""),
            str(r["port"] or "-"),
            str(r["pid"] or "-"),
            str(r["restarts"]),
            _duration(r["uptime"]),
            r["health"] or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["state"] in ("crash_loop", "backoff", "stopped") and r["last_error"]:
            click.echo(f"{r['name']}: {r['last_error']}", err=True)


@services_group.command("start")
@click.argument("name")
def start_service(name: str) -> None:
    """Ask for NAME to run (the daemon's supervisor starts it)."""
    store = _instance().workloads
    _may_start(store.require(name))
    store.set_desired(name, "running")
    click.echo(f"{name}: start asked; `conveyor services list` shows when it runs")


@services_group.command("stop")
@click.argument("name")
def stop_service(name: str) -> None:
    """Ask for NAME to stop (SIGTERM to its process group, SIGKILL after 10 s)."""
    _instance().workloads.set_desired(name, "stopped")
    click.echo(f"{name}: stop asked; it stays stopped until `conveyor services start {name}`")


@services_group.command("restart")
@click.argument("name")
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=RESTART_WAIT,
    show_default=True,
    help="Seconds to wait for it to stop before asking it to start again.",
)
def restart_service(name: str, wait: float) -> None:
    """Stop NAME, wait until the supervisor has stopped it, and start it again."""
    store = _instance().workloads
    before = store.require(name)
    _may_start(before)
    store.set_desired(name, "stopped")
    asked = time.monotonic()
    deadline = asked + wait
    while True:
        record = store.require(name)
        # A supervisor looks every half second: give it one look at "stopped" (it
        # clears a finished workload's "do not restart") before asking for "running".
        stopped = record.state in ("stopped", "idle") and record.pid is None
        if stopped and time.monotonic() - asked > 1.0:
            break
        if time.monotonic() >= deadline:
            store.set_desired(name, before.desired)  # type: ignore[arg-type]
            raise click.ClickException(
                f"{name} did not stop within {wait:g}s (state {record.state}); is a daemon "
                f"running? It is left as asked before ({before.desired})"
            )
        time.sleep(0.2)
    store.set_desired(name, "running")
    click.echo(f"{name}: stopped; start asked")


@services_group.command("logs")
@click.argument("name")
@click.option("--stderr", "stderr", is_flag=True, help="Print its stderr instead of stdout.")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many of the last lines.",
)
def service_logs(name: str, stderr: bool, lines: int) -> None:
    """Print the last lines of NAME's stdout (or --stderr)."""
    from conveyor.execution.workload_launch import log_path, workload_log

    instance = _instance()
    record = instance.workloads.require(name)
    stream = "stderr" if stderr else "stdout"
    out = workload_log(instance, record, stream, lines)
    if not out:
        where = (
            f"run {record.run_id[:8]}"
            if record.kind == "interactive" and record.run_id
            else str(log_path(instance.home, name, stream))
        )
        click.echo(f"{name}: nothing on its {stream} yet ({where})", err=True)
        return
    for line in out:
        click.echo(line)


def _may_start(record: WorkloadRecord) -> None:
    """Refuse to start an interactive job whose ``expose`` says it starts only on request."""
    expose = record.spec.get("expose") or {}
    if record.kind == "interactive" and expose.get("manual", True) is False:
        raise click.ClickException(
            f"{record.name} starts only when its URL /apps/{record.name}/ is requested "
            f"(its expose says manual=False)"
        )
