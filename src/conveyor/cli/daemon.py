"""``conveyor daemon`` and ``conveyor trigger``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.output import plural
from conveyor.cli.run import read_config_file
from conveyor.cli.workspace import (
    load_workspace,
    partitions_option,
    split_args,
    workspace_options,
)

if TYPE_CHECKING:
    from conveyor.cli.credentials import Remote
    from conveyor.scheduler.daemon import Daemon

# The exit code after Ctrl-C, as a shell gives a program that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130


@click.command("daemon")
@click.argument("target", required=False)
@workspace_options
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Serve the version active in deployed environment ENV instead of files "
    "(repeatable; 'all': every environment); it follows new active versions.",
)
def daemon_command(target: str | None, module: str | None, envs: tuple[str, ...]) -> None:
    """Run the scheduler for the jobs of TARGET (or -m MODULE) until Ctrl-C.

    Fires schedules and chained triggers exactly once, starts queued runs in
    run-worker processes within each job's concurrency, and ends runs whose
    worker died. Several daemons may share one database.

    With --env prod, the daemon serves the jobs of the version active in prod
    (named prod.JOB) rather than files, and swaps them when another version
    becomes active there (conveyor deploy, promote, rollback).

    Ctrl-C (SIGINT) or SIGTERM stops it after the pass under way; the runs it
    started go on in their own processes, record their own ends, and are
    watched by the next daemon. It exits 130 after Ctrl-C, 0 after SIGTERM
    (a service manager's stop); a second Ctrl-C stops it at once.
    """
    import logging
    import signal
    import threading

    from conveyor.scheduler.daemon import Daemon
    from conveyor.storage.instance import Instance

    if envs and (target or module):
        raise click.UsageError(
            "give either TARGET (or -m MODULE), to serve files, or --env, to serve deployed "
            "versions; not both (run a daemon for each)"
        )
    instance = Instance.from_env()
    if envs:
        from conveyor.scheduler.environments import chosen_environments

        names = chosen_environments(envs)
        daemon = Daemon.of_environments(names, instance)
        what = f"the active versions of {', '.join(names)}"
    else:
        ws = load_workspace(target, module)
        daemon = Daemon(ws, instance)
        what = f"{plural(len(ws.jobs), 'job')} from {ws.describe()}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    stopped_by: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: now

    # Signals, not KeyboardInterrupt in the middle of a step: the pass under way ends
    # whole (a run it handed to a worker is recorded as handed over).
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    click.echo(f"conveyor daemon: {what}; Ctrl-C stops it", err=True)
    daemon.run(stop)
    interrupted = not stopped_by or stopped_by[0] == signal.SIGINT
    click.echo(f"conveyor daemon: {_stopped(daemon, interrupted)}", err=True)
    if interrupted:
        click.get_current_context().exit(EXIT_INTERRUPTED)


def _stopped(daemon: Daemon, interrupted: bool) -> str:
    """One line: what stopped the daemon, and what becomes of the runs it started."""
    why = "stopped by Ctrl-C" if interrupted else "stopped by SIGTERM"
    try:
        n = len(daemon.in_flight())
    except Exception:  # the database is away: say what holds whatever their number
        return f"{why}; the runs it started go on in their own processes"
    if n == 0:
        return f"{why}; no run it started is still running"
    if n == 1:
        return f"{why}; 1 run it started goes on in its own process (the next daemon watches it)"
    return f"{why}; {n} runs it started go on in their own processes (the next daemon watches them)"


@click.command("trigger")
@click.argument("args", nargs=-1, metavar="[TARGET] JOB|tag:NAME")
@workspace_options
@click.option(
    "-c", "--config", "config_file", metavar="FILE", help="Run config as YAML, JSON or TOML."
)
@click.option(
    "--refresh",
    is_flag=True,
    help="The run refreshes (context.refresh) and passes the refresh downstream.",
)
@partitions_option("one run per key")
def trigger_command(
    args: tuple[str, ...],
    module: str | None,
    config_file: str | None,
    refresh: bool,
    partitions: tuple[str, ...],
) -> None:
    """Queue a run of JOB (or of every job with trigger tag:NAME) for the daemon to start.

    A job with partitions gets one run per key (or per --partition). On a
    server (--url, CONVEYOR_URL or `conveyor login`), name JOB or tag:NAME
    alone: the runs are queued there, for the server's daemon.
    """
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        if refresh:
            raise click.UsageError("--refresh is for local triggers; a server does not take it")
        _remote_trigger(
            remote,
            _remote_arg(args, module, "JOB or tag:NAME", "trigger"),
            read_config_file(config_file) if config_file else None,
            partitions,
        )
        return
    target, chosen = split_args(args, module, "JOB or tag:NAME")
    assert chosen is not None
    which = chosen
    from conveyor.errors import NotFoundError
    from conveyor.execution.launch import check_partition, prepare
    from conveyor.execution.state import REFRESH_TAG
    from conveyor.scheduler.intervals import run_interval
    from conveyor.storage.instance import Instance
    from conveyor.storage.states import RunStatus

    ws = load_workspace(target, module)
    if which.startswith("tag:"):
        jobs = [
            j
            for j in ws.jobs.values()
            if any(t.type == "tag" and t.expr == which[4:] for t in j.triggers)
        ]
        if not jobs:
            raise NotFoundError(f"no job of {ws.describe()} has the trigger {which!r}")
    else:
        jobs = [ws.job(which)]
    if len(jobs) > 1:  # a tag's fan-out leaves out the jobs that take no manual runs
        for job in (j for j in jobs if not j.expose.manual):
            click.echo(f"{job.name}: skipped, its expose says manual=False", err=True)
        jobs = [j for j in jobs if j.expose.manual] or jobs
    for job in jobs:
        job.check_manual(f"conveyor trigger {which}")
    run_config = read_config_file(config_file) if config_file else None
    instance = Instance.from_env()
    for job in jobs:
        keys: list[str | None] = [check_partition(job, k) for k in dict.fromkeys(partitions)]
        if not keys:
            # As a tick would: every static key, the period just ended of time partitions.
            keys = [None]
            if job.partitions is not None:
                keys = [*job.partitions.keys_for_tick(time.time())]
        # Config is checked per key: config=partition_config(fn) makes it from the key.
        cfgs = {key: prepare(job, run_config, None, None, key)[1] for key in keys}
        # A manual run of a timed job processes its last elapsed period.
        interval = run_interval(job, time.time(), instance.run_store.last_interval_end(job.name))
        for key in keys:
            run = instance.run_store.create(
                job_name=job.name,
                job_version=job.version,
                status=RunStatus.QUEUED,
                tags={**job.run_tags, **({REFRESH_TAG: "true"} if refresh else {})},
                run_config=cfgs[key].raw,
                trigger=which if which.startswith("tag:") else "manual",
                origin={**ws.origin, "job": job.name},
                interval=interval,
                partition=key,
            )
            click.echo(run.id)


@click.command("backfill")
@click.argument("args", nargs=-1, metavar="[TARGET] JOB")
@workspace_options
@click.option("--start", metavar="DATE", help="First interval's start (ISO).")
@click.option("--end", metavar="DATE", help="Last interval's end (ISO).")
@partitions_option("every key")
def backfill_command(
    args: tuple[str, ...],
    module: str | None,
    start: str | None,
    end: str | None,
    partitions: tuple[str, ...],
) -> None:
    """Queue one run of JOB per missing interval from --start to --end, or per partition.

    A job with interval= takes --start and --end from it when they are left
    out (its end, or now). A job with partitions gets one run per key (per
    interval when there are intervals). The daemon starts the runs within
    the job's concurrency; running the same backfill again queues nothing twice.
    On a server, name the JOB alone: the runs are queued there.
    """
    from conveyor.cli.client import client
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        body = {
            "job_name": _remote_arg(args, module, "JOB", "backfill"),
            "start": start,
            "end": end,
            "partitions": list(partitions) or None,
        }
        with client(remote) as api:
            done = api.backfill(body)
        spec = done["spec"]
        _backfilled(
            done["job_name"],
            spec.get("intervals", 0),
            spec.get("partition_count", 0),
            spec.get("queued", 0),
            spec.get("skipped", 0),
            done["id"],
        )
        return
    target, name = split_args(args, module, "JOB")
    from conveyor.scheduler.backfill import backfill
    from conveyor.storage.instance import Instance

    ws = load_workspace(target, module)
    job = ws.job(name)
    result = backfill(
        job,
        start,
        end,
        partitions=list(partitions) or None,
        instance=Instance.from_env(),
        origin=ws.origin,
    )
    _backfilled(
        job.name,
        len(result.intervals),
        len(result.partitions),
        len(result.queued),
        result.skipped,
        result.backfill_id,
    )


def _backfilled(
    job_name: str, intervals: int, partitions: int, queued: int, skipped: int, bid: str | None
) -> None:
    """What a backfill queued, in two lines."""
    parts = []
    if intervals:
        parts.append(plural(intervals, "interval"))
    if partitions:
        parts.append(plural(partitions, "partition"))
    click.echo(
        f"{job_name}: {' x '.join(parts)}, {plural(queued, 'run')} queued, "
        f"{skipped} already queued or done"
    )
    click.echo(f"backfill {bid}")


def _remote_arg(args: tuple[str, ...], module: str | None, what: str, command: str) -> str:
    """The one word (``what``) a command takes on a server, which has its own workspace."""
    if module or len(args) != 1:
        raise click.UsageError(
            f"on a server, give {what} alone (conveyor {command} {what.split()[0]}): the "
            f"server's workspace has the jobs; for a local FILE or -m MODULE, give --local "
            f"(conveyor --local {command} ...)"
        )
    return args[0]


def _remote_trigger(
    remote: Remote,
    which: str,
    run_config: dict[str, Any] | None,
    partitions: tuple[str, ...],
) -> None:
    """``trigger`` on a server: one launch (``POST /api/runs``) per job and partition key."""
    from conveyor.cli.client import client
    from conveyor.errors import NotFoundError

    with client(remote) as api:
        if which.startswith("tag:"):
            tagged = [j for j in api.jobs() if which in j["triggers"]]
            if not tagged:
                raise NotFoundError(
                    f"no job of the server at {remote.url} has the trigger {which!r}"
                )
            if len(tagged) > 1:  # as locally: the fan-out leaves out jobs without manual runs
                for j in tagged:
                    if not j["manual"]:
                        click.echo(f"{j['name']}: skipped, its expose says manual=False", err=True)
                tagged = [j for j in tagged if j["manual"]] or tagged
            names = [j["name"] for j in tagged]
        else:
            names = [which]
        for name in names:
            keys: list[str | None] = list(dict.fromkeys(partitions))
            if not keys:
                keys = list(api.job(name).get("partitions") or [None])
            for key in keys:
                body: dict[str, Any] = {"job_name": name, "partition": key}
                if run_config is not None:
                    body["run_config"] = run_config
                click.echo(api.launch(body)["id"])
