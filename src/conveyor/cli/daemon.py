"""``conveyor daemon`` and ``conveyor trigger``."""

from __future__ import annotations

import time

import click

from conveyor.cli.run import read_config_file
from conveyor.cli.workspace import (
    load_workspace,
    partitions_option,
    split_args,
    workspace_options,
)


@click.command("daemon")
@click.argument("target", required=False)
@workspace_options
def daemon_command(target: str | None, module: str | None) -> None:
    """Run the scheduler for the jobs of TARGET (or -m MODULE) until Ctrl-C.

    Fires schedules and chained triggers exactly once, starts queued runs in
    run-worker processes within each job's concurrency, and ends runs whose
    worker died. Several daemons may share one database.
    """
    import logging
    import signal
    import threading

    from conveyor.scheduler.daemon import Daemon
    from conveyor.storage.instance import Instance

    ws = load_workspace(target, module)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    daemon = Daemon(ws, Instance.from_env())
    click.echo(
        f"conveyor daemon: {len(ws.jobs)} jobs from {ws.describe()}; Ctrl-C stops it", err=True
    )
    try:
        daemon.run(stop)
    except KeyboardInterrupt:
        pass


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

    A job with partitions gets one run per key (or per --partition).
    """
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
    run_config = read_config_file(config_file) if config_file else None
    instance = Instance.from_env()
    for job in jobs:
        _, cfg = prepare(job, run_config, None, None)
        keys: list[str | None] = [check_partition(job, k) for k in dict.fromkeys(partitions)]
        if not keys:
            keys = list(job.partitions) if job.partitions is not None else [None]
        # A manual run of a timed job processes its last elapsed period.
        interval = run_interval(job, time.time(), instance.run_store.last_interval_end(job.name))
        for key in keys:
            run = instance.run_store.create(
                job_name=job.name,
                job_version=job.version,
                status=RunStatus.QUEUED,
                tags={**job.tags, **({REFRESH_TAG: "true"} if refresh else {})},
                run_config=cfg.raw,
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
    """
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
    parts = []
    if result.intervals:
        parts.append(f"{len(result.intervals)} intervals")
    if result.partitions:
        parts.append(f"{len(result.partitions)} partitions")
    click.echo(
        f"{job.name}: {' x '.join(parts)}, {len(result.queued)} runs queued, "
        f"{result.skipped} already queued or done"
    )
