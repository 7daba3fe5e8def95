"""``conveyor runs``: list, show, cancel, recover and delete recorded runs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json
from conveyor.storage.states import RunStatus

if TYPE_CHECKING:
    from conveyor.cli.client import Client
    from conveyor.cli.credentials import Remote
    from conveyor.server.run_views import RunDetail, RunSummary, TaskRun
    from conveyor.storage.instance import Instance

# The most runs the API lists a page at a time.
MAX_PAGE = 1000


@click.group("runs")
def runs_group() -> None:
    """List, show, cancel and delete recorded runs."""


@runs_group.command("list")
@click.option("-j", "--job", "job_name", metavar="JOB", help="Only runs of this job.")
@click.option(
    "-s",
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    help="Only runs in this status.",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs, newest first.",
)
@click.option(
    "-b",
    "--before",
    metavar="RUN",
    help="Only runs older than RUN: pass the last run of a page for the next page.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_runs(
    job_name: str | None, status: str | None, limit: int, before: str | None, as_json: bool
) -> None:
    """List runs, newest first (on a server: the runs you may read)."""
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        _print_runs(_remote_runs(remote, job_name, status, limit, before), as_json, remote.url)
        return
    from conveyor.server.run_views import run_summary
    from conveyor.storage.instance import Instance

    runs = Instance.from_env().runs(job_name, limit=limit, status=status, before=before)
    if as_json:
        echo_json([r.to_dict() for r in runs])
        return
    _print_runs([run_summary(r) for r in runs], False, None)


def _print_runs(runs: list[RunSummary], as_json: bool, url: str | None) -> None:
    """The runs list, as a table (or, from a server, the API's JSON)."""
    if as_json:
        echo_json([r.model_dump(mode="json") for r in runs])
        return
    from rich.table import Table

    from conveyor.cli.output import console, styled, took, when

    if not runs:
        where = f"conveyor --url {url} run JOB" if url else "conveyor run FILE [JOB]"
        console().print(f"no runs yet; start one with `{where}`")
        return
    table = Table(box=None, header_style="bold")
    for col in ("RUN", "JOB", "STATUS", "STARTED", "DURATION", "TRIGGER", "VERSION", "TAGS"):
        table.add_column(col)
    for r in runs:
        tags = " ".join(f"{k}={v}" if v else k for k, v in r.tags.items())
        # The deployed code the run ran (``prod v3``); empty for the files on disk.
        version = "" if r.deployed_version is None else f"v{r.deployed_version}"
        if r.environment and version:
            version = f"{r.environment} {version}"
        table.add_row(
            r.id[:8],
            r.job_name,
            styled(r.status),
            when(r.started_at or r.created_at),
            took(r.duration),
            r.trigger,
            version,
            tags,
        )
    console().print(table)


def _remote_runs(
    remote: Remote, job_name: str | None, status: str | None, limit: int, before: str | None
) -> list[RunSummary]:
    """The server's newest ``limit`` runs (created before run ``before``, when given)."""
    from conveyor.cli.client import client
    from conveyor.server.run_views import RunSummary

    out: list[RunSummary] = []
    with client(remote) as api:
        bound = api.run(before) if before is not None else None
        cursor = None
        while len(out) < limit:
            page = api.runs(
                job=job_name,
                status=status,
                limit=min(limit - len(out) + 1, MAX_PAGE),
                cursor=cursor,
                created_before=bound["created_at"] if bound is not None else None,
            )
            rows = [r for r in page["runs"] if bound is None or r["id"] != bound["id"]]
            out += [RunSummary.model_validate(r) for r in rows[: limit - len(out)]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return out


@runs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_run(run_id: str, as_json: bool) -> None:
    """Show a run (a full id or its first characters) with its tasks."""
    from conveyor.cli.client import client
    from conveyor.cli.credentials import current_remote
    from conveyor.server.run_views import RunDetail, run_summary, task_run

    remote = current_remote()
    if remote is not None:
        with client(remote) as api:
            detail = RunDetail.model_validate(api.run(run_id))
            info = _remote_load_info(api, detail)
        if as_json:
            echo_json({**detail.model_dump(mode="json"), **_load_info_json(info)})
            return
        _print_run(detail, detail.job_version, detail.selection, detail.tasks, detail.waiting_for)
        _print_load_info(info)
        return
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    details = instance.run_details(instance.run_store.resolve_id(run_id))
    run = details.run
    info = _local_load_info(instance, run.id, run.job_name)
    if as_json:
        echo_json({**details.to_dict(), **_load_info_json(info)})
        return
    from conveyor.scheduler.freshness import waiting_reason

    tasks = [task_run(t) for t in details.tasks]
    waiting = waiting_reason(details.events) if run.status == "queued" else None
    _print_run(run_summary(run), run.job_version, run.selection, tasks, waiting)
    _print_load_info(info)


# The keys of the result a @pipeline_run body stores (execution.dlt_runs.load_info_summary).
_LOAD_INFO_KEYS = frozenset({"pipeline", "loads_ids", "row_counts", "schema_changes"})


def is_load_info(value: object) -> bool:
    """Whether a stored result is a pipeline run's load info (``load_info_summary``)."""
    return isinstance(value, dict) and value.keys() >= _LOAD_INFO_KEYS


def _local_load_info(instance: Instance, run_id: str, job_name: str) -> dict[str, Any] | None:
    """The load info a ``@pipeline_run`` run stored as its result, if this run has one.

    A job body's result is stored under the job's name; only a dict is loaded (a
    large result of another kind is not read to find out it is not load info).
    """
    pointer = instance.result_store.pointers(run_id).get(job_name)
    if pointer is None or pointer["type_name"] != "builtins.dict":
        return None
    try:
        value = instance.result_store.load(pointer)
    except Exception:  # a result this process cannot read is not shown, as in the UI
        return None
    return value if is_load_info(value) else None


def _remote_load_info(api: Client, detail: RunDetail) -> dict[str, Any] | None:
    """The load info of a server's run: its body's result, read through the API."""
    if not any(t.key == detail.job_name and t.status == "success" for t in detail.tasks):
        return None
    from urllib.parse import quote

    from conveyor.cli.client import RemoteError

    path = f"/runs/{quote(detail.id, safe='')}/tasks/{quote(detail.job_name, safe='')}/result"
    try:
        result = api.get(path)
    except RemoteError as e:
        if e.status == 404:  # no stored result: nothing to show
            return None
        raise
    value = result.get("value") if isinstance(result, dict) else None
    return value if is_load_info(value) else None


def _load_info_json(info: dict[str, Any] | None) -> dict[str, Any]:
    return {} if info is None else {"load_info": info}


def _print_load_info(info: dict[str, Any] | None) -> None:
    """A pipeline run's load info: where it loaded, its loads, rows per table, schema changes."""
    if info is None:
        return
    from rich.markup import escape

    from conveyor.cli.output import console

    out = console()
    where = ".".join(str(p) for p in (info.get("destination"), info.get("dataset")) if p)
    out.print(
        f"[bold]load info[/]  pipeline {escape(info['pipeline'])}"
        + (f" into {escape(where)}" if where else "")
    )
    span = info.get("interval")
    rows = [
        ("interval", f"[{span[0]}, {span[1]})" if span else "-"),
        ("loads", ", ".join(info["loads_ids"]) or "none (the body loaded nothing)"),
        ("failed jobs", str(info.get("failed_jobs", 0))),
        ("new tables", ", ".join(info.get("new_tables") or []) or "-"),
    ]
    for name, value in rows:
        out.print(f"  [dim]{name:<11}[/] {escape(value)}", markup=True, highlight=False)
    counts = info["row_counts"]
    if counts:
        out.print("  [dim]rows[/]", markup=True)
        width = max(len(t) for t in counts)
        for table in sorted(counts, key=lambda t: (t.startswith("_dlt_"), t)):
            out.print(f"    {table:<{width}}  {counts[table]}", markup=False, highlight=False)
    changes = info["schema_changes"]
    if changes:
        out.print("  [dim]schema changes[/]", markup=True)
        for table, columns in sorted(changes.items()):
            out.print(
                f"    {table}: added {', '.join(columns) or 'no columns'}",
                markup=False,
                highlight=False,
            )


def _print_run(
    run: RunSummary,
    job_version: str,
    selection: list[str] | None,
    tasks: list[TaskRun],
    waiting: str | None = None,
) -> None:
    """A run's fields (with what a queued run waits for), then its tasks as a table."""
    from rich.markup import escape
    from rich.table import Table

    from conveyor.cli.output import console, styled, took, when

    out = console()
    out.print(f"[bold]run {run.id}[/]  {styled(run.status)}")
    fields = [
        ("job", f"{run.job_name} (version {job_version})"),
        ("created", when(run.created_at)),
        ("started", when(run.started_at)),
        ("ended", when(run.ended_at)),
        ("duration", took(run.duration)),
        ("trigger", run.trigger),
        ("interval", _span(run.interval_start, run.interval_end)),
        ("partition", run.partition or "-"),
        ("tags", " ".join(f"{k}={v}" for k, v in run.tags.items()) or "-"),
        ("selection", " ".join(selection) if selection else "-"),
        ("parent run", run.parent_run_id or "-"),
        ("error", run.error or "-"),
    ]
    if waiting:
        fields.insert(1, ("waiting", escape(waiting)))
    for name, value in fields:
        out.print(f"  [dim]{name:<11}[/] {value}", markup=True)
    table = Table(box=None, header_style="bold")
    for col in ("TASK", "STATUS", "ATTEMPTS", "DURATION", "DEPENDS ON", "ERROR"):
        table.add_column(col, overflow="fold")
    for t in tasks:
        last = t.attempts[-1]
        error = last.error_message or ""
        if last.error_type:
            error = f"{last.error_type.rsplit('.', 1)[-1]}: {error}"
        table.add_row(
            t.key,
            styled(t.status),
            str(len(t.attempts)),
            took(t.duration),
            ", ".join(t.depends_on) or "-",
            error[:120],
        )
    out.print(table)


@runs_group.command("cancel")
@click.argument("run_id")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the run has stopped."
)
@click.option(
    "--timeout",
    type=float,
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="How long --wait waits.",
)
def cancel_run(run_id: str, wait: bool, timeout: float) -> int:
    """Cancel a run: a queued run at once; a running one stops its tasks and ends canceled."""
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        return _remote_cancel(remote, run_id, wait, timeout)
    import time

    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    rid = instance.run_store.resolve_id(run_id)
    status = instance.cancel_run(rid)
    if status.is_terminal and status is not RunStatus.CANCELED:
        click.echo(f"run {rid} had already ended: {status}")
        return 0
    deadline = time.monotonic() + timeout
    while wait and not status.is_terminal and time.monotonic() < deadline:
        time.sleep(0.2)
        status = instance.run(rid).status
    click.echo(f"run {rid}: {status}")
    return 0 if status.is_terminal or not wait else 1


@runs_group.command("delete")
@click.argument("run_ids", nargs=-1, metavar="[RUN]...")
@click.option("-j", "--job", "job_name", metavar="JOB", help="The ended runs of this job.")
@click.option(
    "-b",
    "--before",
    metavar="DATE",
    help="The ended runs created before DATE (ISO date or datetime, UTC unless it says).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_runs(
    run_ids: tuple[str, ...], job_name: str | None, before: str | None, yes: bool
) -> int:
    """Delete runs with their tasks, events, logs and results (files included).

    Name the runs by id (RUN: a full id or its first characters), or pick the
    ended runs of --job, created --before a date, or both. Runs that have not
    ended are never deleted: named by id, they are an error (cancel them
    first); picked by --job or --before, they are left. Asks for confirmation
    when run in a terminal; elsewhere, pass --yes.
    """
    import sys

    from conveyor.cli.credentials import current_remote
    from conveyor.storage.deletion import epoch

    if current_remote() is not None:
        raise click.UsageError(
            "runs delete works on the local instance only (the server has no API for it); "
            "give --local, on the server's machine: conveyor --local runs delete ..."
        )
    from conveyor.storage.instance import Instance

    if run_ids and (job_name is not None or before is not None):
        raise click.UsageError("give RUN ids, or --job and/or --before, not both")
    if not run_ids and job_name is None and before is None:
        raise click.UsageError(
            "name the runs to delete: RUN ids, --job JOB, or --before DATE (e.g. 2026-01-01)"
        )
    instance = Instance.from_env()
    deletion = instance.run_deletion
    active = 0
    if run_ids:
        ids = list(dict.fromkeys(instance.run_store.resolve_id(r) for r in run_ids))
        instance.check_deletable(ids)
        what = _plural(len(ids), "run")
    else:
        cutoff = epoch(before, "--before")
        ids = deletion.ended(job_name=job_name, before=cutoff)
        active = deletion.active(job_name=job_name, before=cutoff)
        scope = (f" of job {job_name!r}" if job_name else "") + (
            f" created before {before}" if before else ""
        )
        what = f"{_plural(len(ids), 'ended run')}{scope}"
        if not ids:
            click.echo(f"no ended runs{scope}: nothing to delete{_left(active)}")
            return 0
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"this would delete {what}; pass --yes to delete without a terminal to confirm in"
            )
        click.confirm(f"delete {what}, with their logs and results?", abort=True)
    done = instance.delete_runs(ids) if run_ids else deletion.delete(ids)
    click.echo(
        f"deleted {_plural(len(done.run_ids), 'run')} ({_plural(done.files, 'file')}, "
        f"{_size(done.bytes)} of logs and results){_left(active)}"
    )
    return 0


def _remote_cancel(remote: Remote, run_id: str, wait: bool, timeout: float) -> int:
    """``runs cancel`` on a server: ask it to cancel, then (``wait``) watch the run stop."""
    import time

    from conveyor.cli.client import client

    with client(remote) as api:
        answer = api.cancel(run_id)
        rid, status = answer["run_id"], RunStatus(answer["status"])
        if status.is_terminal and status is not RunStatus.CANCELED:
            click.echo(f"run {rid} had already ended: {status}")
            return 0
        deadline = time.monotonic() + timeout
        while wait and not status.is_terminal and time.monotonic() < deadline:
            time.sleep(0.2)
            status = RunStatus(api.run(rid)["status"])
    click.echo(f"run {rid}: {status}")
    return 0 if status.is_terminal or not wait else 1


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    size = n / 1000
    for unit in ("kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _left(active: int) -> str:
    if not active:
        return ""
    verb = "has" if active == 1 else "have"
    return f"; {_plural(active, 'run')} that {verb} not ended {'is' if active == 1 else 'are'} left"


def _span(start: datetime | None, end: datetime | None) -> str:
    """A run's interval, half-open, in UTC."""
    if start is None or end is None:
        return "-"
    return f"[{start.isoformat()}, {end.isoformat()})"


@runs_group.command("recover")
@click.argument("run_id", required=False)
def recover_runs(run_id: str | None) -> int:
    """Write what runs kept in their local journal while the database was away.

    A run that could not reach its database keeps its records in
    CONVEYOR_HOME/journal and, when it gives up waiting, says to run this.
    Without RUN_ID, every journal in CONVEYOR_HOME is written. A run whose
    process is gone is then ended, as a daemon on this machine would.
    """
    from conveyor.errors import LeaseLostError
    from conveyor.storage.hosts import is_gone
    from conveyor.storage.instance import Instance
    from conveyor.storage.journal import kept

    instance = Instance.from_env()
    assert instance.home is not None
    if run_id is not None:
        rids = [instance.run_store.resolve_id(run_id)]
    else:
        rids = [path.stem for path in kept(instance.home)]
        if not rids:
            click.echo(f"no run journals in {instance.home / 'journal'}: nothing to recover")
            return 0
    failed = 0
    for rid in rids:
        try:
            what = instance.recover(rid)
        except LeaseLostError as e:
            failed += 1
            click.echo(
                f"run {rid}: its journal {instance.journal_path(rid)} was not written: {e}",
                err=True,
            )
            continue
        run = instance.run(rid)
        if not run.status.is_terminal and is_gone(run.host, run.pid, run.pid_started):
            instance.end_lost_run(rid, "its process ended before the run did", run.token)
            run = instance.run(rid)
        click.echo(f"run {rid}: wrote {what}; the run is {run.status}")
    return 1 if failed else 0
