"""How a run followed to its end is shown, whether it runs here or on a server.

``conveyor run`` and ``rerun`` print the same lines either way: the job and its
task count, a line per task as it ends, then the run's status with its failures.
On a server the run is followed by looking at ``GET /api/runs/{id}`` every half
second and telling the same ``TaskProgress`` what changed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.output import plural

if TYPE_CHECKING:
    from conveyor.cli.client import Client
    from conveyor.cli.output import TaskProgress

# How often a run followed on a server is looked at (seconds).
POLL = 0.5
# After this long queued, a run followed on a server says what it waits for (seconds).
QUEUED_NOTE_AFTER = 10.0


def print_start(job_name: str, total: int | None) -> None:
    """The first line of a run followed to its end: ``JOB: running N tasks``."""
    from conveyor.cli.output import console

    tasks = f" {plural(total, 'task')}" if total else ""
    console().print(f"[bold]{job_name}[/]: running{tasks}")


def print_end(
    run_id: str,
    status: str,
    elapsed: float | None,
    progress: TaskProgress,
    failures: list[tuple[str, str, str]],
    error: str | None = None,
) -> None:
    """The last lines of a run followed to its end: its status and tasks, then each
    failed task (``(key, error type, message)``) and where to look further, or the
    run's own ``error`` when no task failed."""
    from conveyor.cli.output import console, styled, took
    from conveyor.storage.states import RunStatus

    out = console()
    out.print(
        f"run [bold]{run_id}[/] {styled(status)} in {took(elapsed)}: "
        f"{progress.summary(RunStatus(status))}"
    )
    for key, kind, message in failures:
        out.print(f"  [red]{key}[/]: {kind}: {message}")
    if error and not failures:
        out.print(f"  [red]error[/]: {error}")
    if failures:
        out.print(
            f"  details: conveyor runs show {run_id[:8]}   "
            f"traceback: conveyor logs {run_id[:8]} --task '{failures[0][0]}' --stderr"
        )


def follow_remote(api: Client, run_id: str, job_name: str, *, echo: bool = False) -> int:
    """Follow run ``run_id`` on the server to its end, printing what a local run prints
    (and, with ``echo``, its tasks' output as it comes); 0 if it succeeded, else 1.

    Ctrl-C stops following; the run goes on on the server.
    """
    from conveyor.cli.output import TaskProgress
    from conveyor.storage.states import RunStatus

    detail = api.run(run_id)
    total = _remote_task_count(api, job_name, detail.get("selection"))
    print_start(job_name, total)
    progress = TaskProgress(total)
    seen = _Seen()
    began = time.monotonic()
    noted = False
    try:
        while True:
            seen.report(detail, progress)
            if echo:
                seen.echo(api, detail)
            if RunStatus(detail["status"]).is_terminal:
                break
            queued = detail["status"] == RunStatus.QUEUED
            if queued and not noted and time.monotonic() - began > QUEUED_NOTE_AFTER:
                noted = True
                click.echo(
                    f"run {run_id[:8]} is queued on {api.remote.url}: the server's daemon "
                    f"starts it when the job's slots allow (Ctrl-C stops following, the run "
                    f"stays queued)",
                    err=True,
                )
            time.sleep(POLL)
            detail = api.run(run_id)
    except KeyboardInterrupt:
        progress.stop()
        click.echo(
            f"stopped following run {run_id[:8]}; it goes on on the server: "
            f"conveyor runs show {run_id[:8]} (or conveyor runs cancel {run_id[:8]})",
            err=True,
        )
        raise
    progress.stop()
    failures = []
    for task in detail["tasks"]:
        if task["status"] != "failure" or not task["attempts"]:
            continue
        last = task["attempts"][-1]
        kind = (last.get("error_type") or "Error").rsplit(".", 1)[-1]
        failures.append((task["key"], kind, last.get("error_message") or ""))
    elapsed = detail.get("duration")
    print_end(detail["id"], detail["status"], elapsed, progress, failures, detail.get("error"))
    return 0 if detail["status"] == RunStatus.SUCCESS else 1


def _remote_task_count(api: Client, job_name: str, selection: list[str] | None) -> int | None:
    """How many tasks a run of the server's job runs, as far as the job says: a
    workflow's graph, whole; else None (a @job's body makes its steps as it goes)."""
    if selection:
        return None
    job = api.job(job_name)
    return len(job["graph"]["nodes"]) if job.get("kind") == "workflow" else None


class _Seen:
    """What of a run followed on a server has been shown: attempts started and ended,
    and (for --echo) how far each task's output was printed."""

    def __init__(self) -> None:
        self.started: set[tuple[str, int]] = set()
        self.ended: set[tuple[str, int]] = set()
        self.offsets: dict[tuple[str, str], int] = {}

    def report(self, detail: dict[str, Any], progress: TaskProgress) -> None:
        """Tell ``progress`` (a ``TaskProgress``) of the attempts that started or ended
        since the last look, in the order the server lists them."""
        from conveyor.storage.states import TaskStatus

        for task in detail["tasks"]:
            for attempt in task["attempts"]:
                at = (task["key"], attempt["attempt"])
                status = TaskStatus(attempt["status"])
                if attempt.get("started_at") and at not in self.started:
                    self.started.add(at)
                    progress(task["key"], TaskStatus.RUNNING)
                if status.is_terminal and at not in self.ended:
                    self.ended.add(at)
                    # Timed by the server: this look may come well after the end.
                    if attempt.get("duration") is not None:
                        progress.started[task["key"]] = time.monotonic() - attempt["duration"]
                    progress(task["key"], status)

    def echo(self, api: Client, detail: dict[str, Any]) -> None:
        """Print what the run's tasks wrote since the last look, stdout and stderr."""
        for task in detail["tasks"]:
            if not task["attempts"]:
                continue
            for stream in ("stdout", "stderr"):
                where = (task["key"], stream)
                offset = self.offsets.get(where, 0)
                chunk = api.log(detail["id"], task["key"], stream=stream, offset=offset)
                if chunk["text"]:
                    click.echo(chunk["text"], nl=False, err=stream == "stderr")
                self.offsets[where] = chunk["next_offset"]
