"""The timeline (Gantt) of a run: one row per task, one bar per attempt, the waits
between retries drawn between the bars. Positions are percentages of the run's span,
so the page draws it with plain HTML and CSS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from conveyor.server.run_views import RunDetail
from conveyor.server.ui.templating import duration

# A run with more tasks than this shows the first ones (by start) in its timeline.
MAX_ROWS = 300
AXIS_TICKS = 4


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
    t0 = run.started_at or (min(starts) if starts else None) or run.created_at
    ends = [a.ended_at for t in run.tasks for a in t.attempts if a.ended_at is not None]
    running = run.ended_at is None and run.status in ("starting", "running", "canceling")
    t1 = run.ended_at or (now if running else max([*ends, t0]))
    if starts:
        t0 = min(t0, *starts)
    span = max((t1 - t0).total_seconds(), 0.001)
    ordered = sorted(
        run.tasks,
        key=lambda t: (t.started_at is None, t.started_at or now, t.key),
    )
    rows = []
    for t in ordered[:MAX_ROWS]:
        row = Row(key=t.key, status=t.status, took=duration(t.duration))
        previous_end: datetime | None = None
        for a in t.attempts:
            if a.started_at is None:
                continue
            end = a.ended_at or (now if running else t1)
            left = _pct(a.started_at, t0, span)
            width = max(_pct(end, t0, span) - left, 0.4)
            what = f"{t.key} attempt {a.attempt}: {a.status.replace('_', ' ')}"
            took = duration((end - a.started_at).total_seconds())
            error = f" ({a.error_type}: {a.error_message})" if a.error_type else ""
            row.bars.append(Bar(left, width, a.status, f"{what}, {took}{error}"[:300]))
            if previous_end is not None and a.started_at > previous_end:
                w_left = _pct(previous_end, t0, span)
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
