"""The timeline (Gantt) of a run: one row per task, one bar per attempt, the waits
between retries drawn between the bars. Positions are percentages of the span from the
first task's start to the run's end, so the page draws it with plain HTML and CSS.

An attempt that failed and was retried is drawn as a failure (red), the wait before its
retry as a dotted line; every bar is at least ``MIN_WIDTH`` wide, so that a short failed
attempt still shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from conveyor.server.run_views import RunDetail
from conveyor.server.ui.templating import duration

# A run with more tasks than this shows the first ones (in the plan's order) in its timeline.
MAX_ROWS = 300
AXIS_TICKS = 4
# The narrowest bar, in percent of the track (the CSS adds a minimum in pixels).
MIN_WIDTH = 0.8


@dataclass(frozen=True, slots=True)
class Bar:
    left: float
    width: float
    status: str
    title: str


@dataclass(frozen=True, slots=True)
class Wait:
    left: float
    width: float
    title: str


@dataclass(slots=True)
class Row:
    key: str
    status: str
    took: str
    bars: list[Bar] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)


@dataclass(slots=True)
class Timeline:
    rows: list[Row]
    ticks: list[tuple[float, str]]
    hidden: int
    now: float | None


def _pct(moment: datetime, t0: datetime, span: float) -> float:
    return max(0.0, min(100.0, (moment - t0).total_seconds() / span * 100))


def timeline(run: RunDetail, now: datetime | None = None) -> Timeline:
    """The rows of ``run``'s timeline as of ``now``; running attempts reach ``now``."""
    now = now or datetime.now(UTC)
    starts = [a.started_at for t in run.tasks for a in t.attempts if a.started_at is not None]
    # From the first task's start: the time a run takes to start its first task is not
    # the tasks' time, and would leave most of a short run's timeline empty.
    t0 = min(starts) if starts else (run.started_at or run.created_at)
    ends = [a.ended_at for t in run.tasks for a in t.attempts if a.ended_at is not None]
    running = run.ended_at is None and run.status in ("starting", "running", "canceling")
    t1 = run.ended_at or (now if running else max([*ends, t0]))
    span = max((t1 - t0).total_seconds(), 0.001)
    rows = []
    # In the order of the task table (the plan's, see run_views.ordered_tasks).
    for t in run.tasks[:MAX_ROWS]:
        row = Row(key=t.key, status=t.status, took=duration(t.duration))
        previous_end: datetime | None = None
        for a in t.attempts:
            if a.started_at is None:
                continue
            end = a.ended_at or (now if running else t1)
            left = min(_pct(a.started_at, t0, span), 100 - MIN_WIDTH)
            width = max(_pct(end, t0, span) - left, MIN_WIDTH)
            # An attempt up for retry has ended: it failed, and another follows.
            status = "failure" if a.status == "up_for_retry" else a.status
            shown = "failed, retried" if a.status == "up_for_retry" else status.replace("_", " ")
            what = f"{t.key} attempt {a.attempt}: {shown}"
            took = duration((end - a.started_at).total_seconds())
            error = f" ({a.error_type}: {a.error_message})" if a.error_type else ""
            row.bars.append(Bar(left, width, status, f"{what}, {took}{error}"[:300]))
            if previous_end is not None and a.started_at > previous_end:
                w_left = min(_pct(previous_end, t0, span), left)
                waited = duration((a.started_at - previous_end).total_seconds())
                row.waits.append(
                    Wait(w_left, left - w_left, f"waited {waited} before attempt {a.attempt}")
                )
            previous_end = a.ended_at
        rows.append(row)
    ticks = [
        (i * 100 / AXIS_TICKS, "+" + duration(span * i / AXIS_TICKS)) for i in range(AXIS_TICKS + 1)
    ]
    ticks[0] = (0.0, "0 s")
    return Timeline(
        rows=rows,
        ticks=ticks,
        hidden=max(0, len(run.tasks) - MAX_ROWS),
        now=100.0 if running else None,
    )
