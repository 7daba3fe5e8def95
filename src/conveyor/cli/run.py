"""``conveyor run`` and ``conveyor rerun``."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.workspace import load_workspace, split_args, workspace_options
from conveyor.definitions.job import EXECUTORS
from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from conveyor.cli.credentials import Remote


def read_config_file(path: str) -> dict[str, Any]:
    """Read run config from a YAML, JSON or TOML file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path!r}: {e.strerror}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            import json

            data = json.loads(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {path!r}: use a .yaml, .yml, .json or .toml file")
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {path!r} is not valid {suffix[1:].upper()}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r}: the top level must be a mapping")
    return data


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{v!r}: write tags as key=value", param_hint="--tag")
        tags[key.strip()] = value.strip()
    return tags


@click.command("run")
@click.argument("args", nargs=-1, metavar="[TARGET] [JOB]")
@workspace_options
@click.option(
    "-c", "--config", "config_file", metavar="FILE", help="Run config as YAML, JSON or TOML."
)
@click.option(
    "-s",
    "--select",
    "selection",
    multiple=True,
    metavar="EXPR",
    help="Run only these tasks: 't', '*t', 't+', '+t++'... (repeatable).",
)
@click.option(
    "-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the run (repeatable)."
)
@click.option("--echo", is_flag=True, help="Show the tasks' own output as they run.")
@click.option(
    "-e",
    "--executor",
    type=click.Choice(EXECUTORS),
    help="Where the steps run (default: the job's executor, else in_process).",
)
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Start the run in its own worker process, or queue it if the job's slots are taken; "
    "print its id.",
)
@click.option("-p", "--partition", metavar="KEY", help="Process this key of the job's partitions.")
def run_command(
    args: tuple[str, ...],
    module: str | None,
    config_file: str | None,
    selection: tuple[str, ...],
    tags: tuple[str, ...],
    echo: bool,
    executor: str | None,
    detach: bool,
    partition: str | None,
) -> int:
    """Run JOB of TARGET (a Python file) or of -m MODULE, recording it in the instance.

    JOB may be left out when the workspace defines one job. Exits 0 when the
    run succeeds, 1 when it fails, 2 on bad usage. With --detach, the run
    takes a slot of the job's concurrency (and pool) and goes on in a worker
    process, or stays queued for a daemon when no slot is free (or older runs
    of the job are queued); either way the command prints its id at once.

    On a server (conveyor --url URL, CONVEYOR_URL, or `conveyor login`), name
    the JOB alone: it is a job of the server's workspace, queued there for the
    server's daemon and followed here to its end (--detach: its id at once).
    """
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        if executor is not None:
            raise click.UsageError("--executor is for local runs; a server runs the job's own")
        return _remote_run(
            remote,
            _remote_job_arg(args, module),
            read_config_file(config_file) if config_file else None,
            list(selection) or None,
            parse_tags(tags),
            echo,
            detach,
            partition,
        )
    target, job_name = split_args(args, module, "JOB name", required=False)
    ws = load_workspace(target, module)
    job = ws.job(job_name)
    job.check_manual("conveyor run")
    run_config = read_config_file(config_file) if config_file else None
    from conveyor.execution.launch import execute_job
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    origin = {**ws.origin, "job": job.name}
    if detach:
        return _detach(
            job,
            instance,
            origin,
            run_config,
            list(selection) or None,
            parse_tags(tags),
            executor,
            partition,
            f"conveyor daemon {f'-m {module}' if module else shlex.quote(target or '')}",
        )
    return _run_and_report(
        job.name,
        _task_count(job, list(selection) or None),
        lambda listener: execute_job(
            job,
            run_config=run_config,
            selection=list(selection) or None,
            tags=parse_tags(tags),
            instance=instance,
            raise_on_error=False,
            echo=echo,
            listener=listener,
            origin=origin,
            executor=executor,
            partition=partition,
        ),
    )


def _detach(
    job: Any,
    instance: Any,
    origin: dict[str, Any],
    run_config: Any,
    selection: list[str] | None,
    tags: dict[str, str],
    executor: str | None,
    partition: str | None,
    daemon: str,
) -> int:
    """Validate and record the run queued here, then start it in a run worker process if
    it gets its slots (``admission.admit``), as the daemon would; else leave it queued.

    ``daemon`` is the command that starts the runs left queued.
    """
    from conveyor.errors import InvalidTransitionError
    from conveyor.execution.launch import check_partition, prepare
    from conveyor.execution.runner import start
    from conveyor.scheduler.admission import admit, queued_ahead
    from conveyor.storage.runs import local_launcher
    from conveyor.storage.states import RunStatus

    key = check_partition(job, partition)
    plan, cfg = prepare(job, run_config, selection, None, key)
    if executor is not None:
        origin["executor"] = executor
    run = instance.run_store.create(
        job_name=job.name,
        job_version=job.version,
        status=RunStatus.QUEUED,
        tags={**job.run_tags, **tags},
        run_config=cfg.raw,
        selection=plan.selection if plan is not None else None,
        origin=origin,
        partition=key,
        launched_by=local_launcher(),
    )
    click.echo(run.id)
    short = run.id[:8]
    ahead = queued_ahead(instance, job, run)
    try:
        admitted = ahead == 0 and admit(instance, job, run)
    except InvalidTransitionError:
        # A daemon took it from the queue first (or it was canceled): its worker is not ours.
        now = instance.run_store.get(run.id).status
        click.echo(
            f"run {short} is {now} already; follow it with: conveyor runs show {short}", err=True
        )
        return 0
    if not admitted:
        why = (
            f"{_plural(ahead, 'older run')} of job {job.name!r} "
            f"{'is' if ahead == 1 else 'are'} queued before it"
            if ahead
            else _full_slot(instance, job)
        )
        click.echo(
            f"run {short} queued: {why}; a daemon ({daemon}) starts it when a slot frees",
            err=True,
        )
        return 0
    worker = start(run.id, instance)
    worker.returncode = 0  # not ours to wait for: it goes on after this command exits
    click.echo(
        f"started in worker process {worker.pid}; follow it with: conveyor runs show {run.id[:8]}",
        err=True,
    )
    return 0


def _full_slot(instance: Any, job: Any) -> str:
    """Which of the job's slots kept a run from starting, in words."""
    from conveyor.scheduler.admission import slots_of

    for scope, limit in slots_of(instance, job):
        active = len(instance.lease_store.held(scope))
        if active < limit:
            continue  # freed since
        kind, name = scope.split(":", 1)
        if kind == "job":
            verb = "is" if active == 1 else "are"
            return f"job {name!r} allows {_plural(limit, 'run')} at once and {active} {verb} active"
        return (
            f"pool {name!r} of job {job.name!r} allows {limit} at once and its {limit} "
            f"{'slot is' if limit == 1 else 'slots are'} taken (conveyor pools list shows by whom)"
        )
    return f"no slot of job {job.name!r} was free"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@click.command("rerun")
@click.argument("run_id")
@click.option("--full", is_flag=True, help="Execute every task again, reusing nothing.")
@click.option(
    "-c",
    "--config",
    "config_file",
    metavar="FILE",
    help="New run config as YAML, JSON or TOML, in place of the run's.",
)
@click.option("--echo", is_flag=True, help="Show the tasks' own output as they run.")
@click.option(
    "--version",
    "version",
    metavar="latest|N",
    help="Run another deployed version's code: latest (the active one of the run's "
    "environment) or a number. Default: the code the run ran.",
)
def rerun_command(
    run_id: str, full: bool, config_file: str | None, echo: bool, version: str | None
) -> int:
    """Run RUN_ID again: its failed and not-run tasks and all downstream of them.

    Tasks that succeeded are reused from their stored results unless --full.
    With --config, the file's config replaces the run's, and the tasks whose
    config it changes run again too. A run that succeeded has nothing to
    rerun from failure: give --full or --config. A run of a deployed version
    reruns that version's code unless --version picks another. On a server,
    the rerun is queued there and followed here to its end.
    """
    from conveyor.cli.client import client
    from conveyor.cli.credentials import current_remote
    from conveyor.cli.report import follow_remote

    run_config = read_config_file(config_file) if config_file else None
    from conveyor.execution.rerun import parse_version

    parse_version(version)  # a bad --version says so before anything else
    remote = current_remote()
    if remote is not None:
        if version is not None:
            raise click.UsageError(
                "--version is for local reruns; a server reruns a run with its own version"
            )
        with client(remote) as api:
            run = api.rerun(run_id, full=full, run_config=run_config)
            return follow_remote(api, run["id"], run["job_name"], echo=echo)
    from conveyor.execution.rerun import plan_rerun, rerun_job, rerun_origin
    from conveyor.execution.runner import load_origin
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    parent = instance.run(instance.run_store.resolve_id(run_id))
    origin = rerun_origin(instance, parent, version)
    ws = load_origin(origin, instance)
    job = ws.job(parent.job_name)
    planned = plan_rerun(job, parent.id, full=full, run_config=run_config, instance=instance)
    return _run_and_report(
        job.name,
        _task_count(job, parent.selection),
        lambda listener: rerun_job(
            job,
            parent.id,
            instance=instance,
            raise_on_error=False,
            echo=echo,
            listener=listener,
            planned=planned,
            origin=origin,
        ),
    )


def _task_count(job: Any, selection: list[str] | None) -> int | None:
    """How many tasks a run of ``job`` with ``selection`` runs; None for a @job, whose
    body makes its steps as it goes."""
    if job.graph is None:
        return None
    if not selection:
        return len(job.graph)
    from conveyor.definitions.selection import select

    return len(select(job.graph, selection))


def _run_and_report(job_name: str, total: int | None, start: Any) -> int:
    from conveyor.cli.output import TaskProgress
    from conveyor.cli.report import print_end, print_start

    print_start(job_name, total)
    progress = TaskProgress(total)
    began = time.monotonic()
    try:
        result = start(progress)
    finally:
        progress.stop()
    failures = []
    for key, err in result.failures.items():
        original = getattr(err, "original", err)
        # The task's own exception may hold a secret's value: print it as the records do.
        failures.append((key, type(original).__name__, result.masked(str(original))))
    print_end(result.run_id, str(result.status), time.monotonic() - began, progress, failures)
    return 0 if result.success else 1


def _remote_job_arg(args: tuple[str, ...], module: str | None) -> str | None:
    """The JOB of ``run`` on a server: one word, no workspace (the server has its own)."""
    if module or len(args) > 1:
        raise click.UsageError(
            "on a server, name the job alone (conveyor run JOB): the server's workspace has "
            "it; to run a job of a local FILE or -m MODULE, give --local (conveyor --local run ...)"
        )
    return args[0] if args else None


def _remote_run(
    remote: Remote,
    job_name: str | None,
    run_config: dict[str, Any] | None,
    selection: list[str] | None,
    tags: dict[str, str],
    echo: bool,
    detach: bool,
    partition: str | None,
) -> int:
    """Queue a run of ``job_name`` on the server, then follow it (or print its id)."""
    from conveyor.cli.client import client
    from conveyor.cli.report import follow_remote

    with client(remote) as api:
        if job_name is None:
            names = [j["name"] for j in api.jobs()]
            if len(names) != 1:
                raise click.UsageError(
                    f"name the JOB to run; the server at {remote.url} has "
                    f"{', '.join(names) if names else 'no jobs you may read'}"
                )
            job_name = names[0]
        body: dict[str, Any] = {"job_name": job_name, "tags": tags}
        if run_config is not None:
            body["run_config"] = run_config
        if selection:
            body["selection"] = selection
        if partition is not None:
            body["partition"] = partition
        run = api.launch(body)
        if detach:
            click.echo(run["id"])
            click.echo(
                f"run {run['id'][:8]} queued on {remote.url}; follow it with: "
                f"conveyor runs show {run['id'][:8]}",
                err=True,
            )
            return 0
        return follow_remote(api, run["id"], run["job_name"], echo=echo)
