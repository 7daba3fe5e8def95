"""``conveyor schedules``: the timed triggers of a workspace and when they fire next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from conveyor.cli.main import echo_json
from conveyor.cli.workspace import load_workspace, workspace_options
from conveyor.definitions.job import Job
from conveyor.definitions.triggers import Trigger


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
    """List the timed triggers of TARGET's (or -m MODULE's) jobs, with their next fire times."""
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
    from rich.table import Table

    from conveyor.cli.output import console

    if not rows:
        console().print(f"no job of {ws.describe()} has a timed trigger (schedule, every:, once:)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("JOB", "TRIGGER", "WHEN", "TIME ZONE", "NEXT"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["job"],
            r["cron"] or r["trigger"],
            r["description"],
            r["timezone"],
            "\n".join(t[:16].replace("T", " ") for t in r["next"]) or "-",
        )
    console().print(table)


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
