"""What the example dashboards show: the recent runs of the examples' jobs and their results,
read from Conveyor's run history with the Python API.

The dashboards run beside the daemon that records the runs, with the same
``CONVEYOR_HOME`` (``conveyor dev`` passes it on), so they read the same
database. One ``Instance`` is opened per process, on first use, and shared by
the app's threads; each page or callback asks for at most a few hundred rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor import ConveyorError, Instance

# The runs a dashboard looks at: enough for a chart, cheap to read.
RECENT = 200

_lock = threading.Lock()
_instance: Instance | None = None


def instance() -> Instance:
    """The instance named by CONVEYOR_HOME (and CONVEYOR_DATABASE_URL), opened once."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = Instance.from_env()
        return _instance


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as a dashboard shows it."""

    id: str
    job: str
    status: str
    started: datetime | None
    seconds: float | None  # None until it ends

    @property
    def label(self) -> str:
        when = self.started.strftime("%H:%M:%S") if self.started is not None else "queued"
        return f"{when} {self.id[:4]}"


def recent_runs(job: str | None = None, limit: int = RECENT) -> list[RunRow]:
    """The newest ``limit`` runs, of one job or of all, newest first."""
    rows = []
    for run in instance().runs(job or None, limit=limit):
        seconds = None
        if run.started_at is not None and run.ended_at is not None:
            seconds = round((run.ended_at - run.started_at).total_seconds(), 2)
        rows.append(RunRow(run.id, run.job_name, str(run.status), run.started_at, seconds))
    return rows


def job_names(rows: list[RunRow]) -> list[str]:
    return sorted({row.job for row in rows})


def summary(rows: list[RunRow], job: str | None) -> str:
    """``"3 runs of do_stuff: 2 succeeded, 1 failed"``."""
    if not rows:
        return f"No runs of {job or 'any job'} have ended yet."
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    words = {"success": "succeeded", "failure": "failed", "canceled": "canceled"}
    parts = [f"{n} {words.get(status, status)}" for status, n in sorted(counts.items())]
    plural = "" if len(rows) == 1 else "s"
    return f"{len(rows)} run{plural} of {job or 'all jobs'}: {', '.join(parts)}"


def results(job: str, task: str, limit: int = 20) -> list[tuple[RunRow, Any]]:
    """The result of ``task`` in each of the last ``limit`` successful runs of ``job``,
    oldest first."""
    found = []
    for run in instance().runs(job, status="success", limit=limit):
        try:
            value = instance().result(run.id, task)
        except ConveyorError:  # a run of older code without that task, or a result not kept
            continue
        found.append((RunRow(run.id, run.job_name, "success", run.started_at, None), value))
    return found[::-1]
