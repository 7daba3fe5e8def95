"""``conveyor schedules``: the timed triggers of a workspace and when they fire next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.main import echo_json
from conveyor.cli.workspace import load_workspace, workspace_options
from conveyor.definitions.job import Job
from conveyor.definitions.triggers import Trigger

if TYPE_CHECKING:
    from conveyor.cli.credentials import Remote


@click.group("schedules")
def schedules_group() -> None:
    """The schedules of a workspace's jobs."""


@schedules_group.command("list")
@click.argument("target", required=False)
@workspace_options
@click.option(
    "-n",
    "--next",
    "count",
    type=click.IntRange(min=1, max=100),
    default=3,
    show_default=True,
    help="How many next fire times to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_schedules(target: str | None, module: str | None, count: int, as_json: bool) -> None:
    """List the timed triggers of TARGET's (or -m MODULE's) jobs, with their next fire times.

    On a server (--url, CONVEYOR_URL or `conveyor login`), give no TARGET: the
    server's schedules are listed, a switched-off one as `off`.
    """
    from conveyor.cli.credentials import current_remote

    remote = current_remote()
    if remote is not None:
        if target or module:
            raise click.UsageError(
                "on a server, give no TARGET or -m MODULE: the server's workspace has the "
                "jobs; for a local workspace, give --local (conveyor --local schedules list ...)"
            )
        _remote_schedules(remote, count, as_json)
        return
    from conveyor.definitions.schedule import describe
    from conveyor.scheduler.timing import schedule_of

    ws = load_workspace(target, module)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for job in ws.jobs.values():
        for trigger in job.triggers:
            if not trigger.is_timed:
                continue
            span = job.interval
            upcoming = _next_times(trigger, now, count)
            if span is not None and span.end is not None:
                upcoming = [t for t in upcoming if t <= span.end]  # none fire after its end
            cron = None
            if trigger.type == "schedule":
                schedule = schedule_of(trigger)
                cron, zone, when = schedule.cron, schedule.timezone, describe(schedule.cron)
            else:
                zone, when = "UTC", str(trigger).replace(":", " ", 1)
            rows.append(
                {
                    "job": job.name,
                    "trigger": str(trigger),
                    "cron": cron,
                    "timezone": zone,
                    "description": when + _interval_note(job),
                    "next": [t.isoformat() for t in upcoming],
                    "interval": None
                    if span is None
                    else {
                        "start": span.start.isoformat(),
                        "end": span.end.isoformat() if span.end is not None else None,
                        "incremental_mode": job.incremental_mode,
                    },
                }
            )
    if as_json:
        echo_json(rows)
        return
    _print_schedules(
        [
            (r["job"], r["cron"] or r["trigger"], r["description"], r["timezone"], r["next"])
            for r in rows
        ],
        ws.describe(),
    )


def _print_schedules(rows: list[tuple[str, str, str, str, list[str] | None]], where: str) -> None:
    """The schedules table: job, trigger, when in words, time zone, next fire times
    (ISO; ``None`` for a schedule switched off)."""
    from rich.table import Table

    from conveyor.cli.output import console

    if not rows:
        console().print(f"no job of {where} has a timed trigger (schedule, every:, once:)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("JOB", "TRIGGER", "WHEN", "TIME ZONE", "NEXT"):
        table.add_column(col)
    for job, trigger, when, zone, upcoming in rows:
        table.add_row(
            job,
            trigger,
            when,
            zone,
            "off"
            if upcoming is None
            else "\n".join(t[:16].replace("T", " ") for t in upcoming) or "-",
        )
    console().print(table)


def _remote_schedules(remote: Remote, count: int, as_json: bool) -> None:
    """``schedules list`` on a server (``GET /api/schedules``): its JSON, or the table."""
    from conveyor.cli.client import client

    with client(remote) as api:
        found = api.schedules(count)
    if as_json:
        echo_json(found)
        return
    rows = []
    for s in found:
        trigger = s["trigger"]
        if s["type"] == "schedule":
            trigger = trigger.split(":", 1)[-1]
        upcoming = [_local_iso(t, s["timezone"]) for t in s["next_fire_times"]]
        rows.append(
            (
                s["job_name"],
                trigger,
                s["description"],
                s["timezone"] or "UTC",
                upcoming if s["enabled"] else None,
            )
        )
    _print_schedules(rows, f"the server at {remote.url}")


def _local_iso(text: str, zone: str | None) -> str:
    """An ISO time from the API (UTC) in the trigger's time zone, as the local list shows it."""
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    try:
        return at.astimezone(ZoneInfo(zone or "UTC")).isoformat()
    except (KeyError, ValueError):
        return at.isoformat()


def _interval_note(job: Job) -> str:
    """How the job's interval= shapes its runs, for the WHEN column."""
    span = job.interval
    if span is None:
        return ""
    end = f" to {span.end:%Y-%m-%d %H:%M}" if span.end is not None else ""
    if job.incremental_mode == "interval":
        return f"; walks its interval from {span.start:%Y-%m-%d %H:%M}{end}, a period per run"
    return f"; from {span.start:%Y-%m-%d %H:%M}{end}"


def _next_times(trigger: Trigger, now: datetime, count: int) -> list[datetime]:
    """The trigger's next ``count`` fire times after ``now``, in its time zone."""
    from conveyor.scheduler.timing import next_after, schedule_of

    if trigger.type == "schedule":
        return schedule_of(trigger).next_fire_times(now, count)
    out: list[datetime] = []
    moment = now.timestamp()
    while len(out) < count:
        upcoming = next_after(trigger, moment)
        if upcoming is None:
            break
        out.append(datetime.fromtimestamp(upcoming, UTC))
        moment = upcoming
    return out
