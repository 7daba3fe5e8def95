"""How the CLI shows runs: colours per status, times, and live task progress."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from conveyor.definitions.durations import format_duration
from conveyor.storage.states import RunStatus, TaskStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

STYLES = {
    "queued": "cyan",
    "starting": "cyan",
    "pending": "dim",
    "running": "blue",
    "success": "green",
    "reused": "green",
    "failure": "red",
    "up_for_retry": "yellow",
    "skipped": "dim",
    "canceling": "yellow",
    "canceled": "yellow",
}
MARKS = {
    TaskStatus.SUCCESS: "[green]✓[/]",
    TaskStatus.REUSED: "[green]↺[/]",
    TaskStatus.FAILURE: "[red]✗[/]",
    TaskStatus.UP_FOR_RETRY: "[yellow]↻[/]",
    TaskStatus.SKIPPED: "[dim]-[/]",
    TaskStatus.CANCELED: "[yellow]■[/]",
}
# The width of lines written to a pipe or a file: wide enough never to cut a row.
PIPE_WIDTH = 10_000
# Above this many tasks, progress is a bar rather than a line per task.
LINE_LIMIT = 40


@cache
def console() -> Console:
    import sys

    from rich.console import Console

    # Bound to the real stream now: during a run sys.stdout routes writes to
    # the running task's captured log, and progress lines are not task output.
    stream = sys.stdout
    # Into a pipe or a file, lines are not cut to rich's default of 80 columns
    # (``job.success:…``): a table is as wide as its content, for grep and cut.
    # COLUMNS, when set, still wins.
    width = None if _is_terminal(stream) or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, highlight=False, width=width)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def plural(count: int, noun: str) -> str:
    """``1 job``, ``3 jobs``: a count with its noun in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def styled(status: str) -> str:
    return f"[{STYLES.get(status, 'white')}]{status}[/]"


def when(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def took(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


class TaskProgress:
    """Shows tasks as they finish: a line each for small runs, a bar for large ones."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.started: dict[str, float] = {}
        self.counts: dict[TaskStatus, int] = {}
        self.running: set[str] = set()
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._bar_task: TaskID | None = None
        if total is not None and total > LINE_LIMIT:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console(),
                transient=True,
            )
            self._bar_task = self._bar.add_task("0 running", total=total)
            self._bar.start()

    def __call__(self, key: str, status: TaskStatus) -> None:
        with self._lock:
            if status is TaskStatus.RUNNING:
                self.started[key] = time.monotonic()
                self.running.add(key)
                self._describe()
                return
            self.running.discard(key)
            self._describe()
            if status is TaskStatus.PENDING:
                return
            self.counts[status] = self.counts.get(status, 0) + 1
            if self._bar is not None and self._bar_task is not None:
                if status.is_terminal and status is not TaskStatus.UP_FOR_RETRY:
                    self._bar.advance(self._bar_task)
                if status is not TaskStatus.FAILURE:
                    return
            begun = self.started.get(key)
            elapsed = f" [dim]{format_duration(time.monotonic() - begun)}[/]" if begun else ""
            note = {
                TaskStatus.UP_FOR_RETRY: " [yellow]will retry[/]",
                TaskStatus.SKIPPED: " [dim]skipped[/]",
                TaskStatus.REUSED: " [dim]reused[/]",
                TaskStatus.CANCELED: " [yellow]canceled[/]",
                TaskStatus.FAILURE: " [red]failed[/]",
            }.get(status, "")
            console().print(f"  {MARKS.get(status, ' ')} {key}{elapsed}{note}")

    def _describe(self) -> None:
        if self._bar is not None and self._bar_task is not None:
            self._bar.update(self._bar_task, description=f"{len(self.running)} running")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def summary(self, status: RunStatus) -> str:
        order = [
            TaskStatus.SUCCESS,
            TaskStatus.REUSED,
            TaskStatus.FAILURE,
            TaskStatus.SKIPPED,
            TaskStatus.CANCELED,
        ]
        parts = [f"{self.counts[s]} {s}" for s in order if self.counts.get(s)]
        return ", ".join(parts) or "no tasks"
