"""Whether a run's freshness gates are open: its upstream jobs are fresh enough.

- ``is_fresh`` of a scheduled upstream: its last successful run ended at or
  after its latest cron tick; of an ``every:P`` upstream: it ended less than
  P ago; of any other upstream: it has ever succeeded.
- ``is_matching_interval_fresh``: the upstream's successful intervals cover
  the downstream run's interval (without an interval, as ``is_fresh``).

A shut ``is_fresh`` gate holds every queued run of the job alike, so the
job's queue waits in order. A shut ``is_matching_interval_fresh`` gate is the
run's own: it waits for its interval, and the job's later runs, whose
intervals the upstream may cover, go ahead of it (``Wait.own``). While a run
waits, the daemon records what for as a ``run_waiting`` event, once per
reason, and a ``run_gates_open`` event when its gates open; ``waiting_reason``
reads them back for ``conveyor runs show`` and the run page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.definitions.durations import parse_duration
from conveyor.definitions.freshness import FreshnessGate
from conveyor.definitions.job import Job
from conveyor.errors import NotFoundError
from conveyor.scheduler.timing import previous_instant
from conveyor.storage.instance import Instance
from conveyor.storage.records import EventRecord, RunRecord

# The events that say what a queued run waits for, and that it waits no more.
WAITING = "run_waiting"
GATES_OPEN = "run_gates_open"
OPEN_MESSAGE = "its freshness gates are open: it starts when its job and pools have room"

# The successful intervals of an upstream job that overlap [start, end).
Done = Callable[[str, float, float], list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class Wait:
    """Why a queued run may not start: the shut ``gate``, and what it waits for in words.

    ``own``: the wait is the run's (its interval is not covered), not its
    job's, so the job's later runs need not wait behind it.
    """

    gate: FreshnessGate
    reason: str
    own: bool


def is_fresh(instance: Instance, upstream: Job, now: float) -> bool:
    return _staleness(instance, upstream, now) is None


def _staleness(instance: Instance, upstream: Job, now: float) -> str | None:
    """Why ``upstream`` is not fresh at ``now``, or ``None`` when it is."""
    last = instance.run_store.last_success_end(upstream.name)
    if last is None:
        return "it has never succeeded"
    timed = next((t for t in upstream.triggers if t.type in ("schedule", "every")), None)
    if timed is None:
        return None
    if timed.type == "every":
        if now - last < parse_duration(timed.expr):
            return None
        return f"its last success ended {_at(last)}, not within its {timed.expr}"
    tick = previous_instant(timed, now)
    if last >= tick:
        return None
    return f"its last success ended {_at(last)}, before its latest tick {_at(tick)}"


def first_gap(
    intervals: Iterable[tuple[float, float]], start: float, end: float
) -> tuple[float, float] | None:
    """The first part of ``[start, end)`` that the union of ``intervals`` leaves uncovered."""
    reached = start
    for a, b in sorted(intervals):
        if a > reached:
            return (reached, min(a, end))
        reached = max(reached, b)
        if reached >= end:
            return None
    return (reached, end) if reached < end else None


def covers(intervals: list[tuple[float, float]], start: float, end: float) -> bool:
    """Whether the union of ``intervals`` covers ``[start, end)``."""
    return first_gap(intervals, start, end) is None


def wait_of(
    instance: Instance,
    run: RunRecord,
    job: Job,
    jobs: dict[str, Job],
    now: float,
    done: Done | None = None,
) -> Wait | None:
    """What keeps ``run`` of ``job`` waiting (its first shut gate), or ``None`` when all
    are open. ``done`` reads an upstream's successful intervals (default: a query each)."""
    read = done or instance.run_store.success_intervals
    for gate in job.freshness:
        upstream = jobs[gate.upstream]
        if gate.kind == "is_matching_interval_fresh" and run.interval_start and run.interval_end:
            wait = _interval_wait(gate, run, read)
            if wait is not None:
                return wait
            continue
        stale = _staleness(instance, upstream, now)
        if stale is not None:
            reason = f"waits for job {upstream.name!r} to be fresh ({gate}): {stale}"
            return Wait(gate, reason, own=False)
    return None


def interval_wait(instance: Instance, run: RunRecord, job: Job) -> Wait | None:
    """The first ``is_matching_interval_fresh`` gate of ``job`` that ``run`` waits at, for
    its own interval (the other gates are not looked at)."""
    for gate in job.freshness:
        if gate.kind == "is_matching_interval_fresh":
            wait = _interval_wait(gate, run, instance.run_store.success_intervals)
            if wait is not None:
                return wait
    return None


def _interval_wait(gate: FreshnessGate, run: RunRecord, read: Done) -> Wait | None:
    if run.interval_start is None or run.interval_end is None:
        return None
    start, end = run.interval_start.timestamp(), run.interval_end.timestamp()
    intervals = read(gate.upstream, start, end)
    gap = first_gap(intervals, start, end)
    if gap is None:
        return None
    if not intervals:
        missing = f"no successful run of {gate.upstream!r} covers any of it"
    else:
        missing = f"{_span(*gap)} is not covered yet"
    reason = (
        f"waits for job {gate.upstream!r} to cover its interval {_span(start, end)}"
        f" ({gate}): {missing}"
    )
    return Wait(gate, reason, own=True)


def blocked_by(
    instance: Instance, run: RunRecord, job: Job, jobs: dict[str, Job], now: float
) -> FreshnessGate | None:
    """The first gate of ``job`` that keeps ``run`` waiting, or ``None`` when all are open."""
    wait = wait_of(instance, run, job, jobs, now)
    return None if wait is None else wait.gate


def waiting_reason(events: Sequence[EventRecord]) -> str | None:
    """What a queued run waits for, from its events: the newest ``run_waiting`` message,
    unless its gates opened after it."""
    for event in reversed(events):
        if event.kind == GATES_OPEN:
            return None
        if event.kind == WAITING:
            return event.message
    return None


class Coverage:
    """The successful intervals of upstream jobs, read once per daemon pass.

    ``Coverage(instance, runs, jobs)`` reads, for each upstream of an
    ``is_matching_interval_fresh`` gate of those ``runs``, its successes over
    the span of their intervals in one query; it is then the ``done`` of
    ``wait_of`` for those runs.
    """

    def __init__(self, instance: Instance, runs: Iterable[RunRecord], jobs: dict[str, Job]):
        self.instance = instance
        spans: dict[str, tuple[float, float]] = {}
        for run in runs:
            job = jobs.get(run.job_name)
            if job is None or run.interval_start is None or run.interval_end is None:
                continue
            start, end = run.interval_start.timestamp(), run.interval_end.timestamp()
            for gate in job.freshness:
                if gate.kind == "is_matching_interval_fresh":
                    lo, hi = spans.get(gate.upstream, (start, end))
                    spans[gate.upstream] = (min(lo, start), max(hi, end))
        self.spans = spans
        self.read: dict[str, list[tuple[float, float]]] = {}

    def __call__(self, upstream: str, start: float, end: float) -> list[tuple[float, float]]:
        lo, hi = self.spans.get(upstream, (start, end))
        if not (lo <= start and end <= hi):
            return self.instance.run_store.success_intervals(upstream, start, end)
        if upstream not in self.read:
            self.read[upstream] = self.instance.run_store.success_intervals(upstream, lo, hi)
        return [(a, b) for a, b in self.read[upstream] if a < end and b > start]


class WaitNotes:
    """What the daemon told of each waiting run, so that each reason is recorded once.

    ``note(run, wait)`` adds a ``run_waiting`` event when the run's reason
    is new (checked against its stored events the first time this daemon
    sees the run, so a restarted daemon or a second one repeats nothing),
    and a ``run_gates_open`` event when a run that waited may start.
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        # Per queued run: the reason last recorded ("" once its gates are open).
        self.told: dict[str, str] = {}

    def note(self, run: RunRecord, wait: Wait | None) -> None:
        reason = "" if wait is None else wait.reason
        told = self.told.get(run.id)
        if told is None:
            events = self.instance.event_store.for_run(run.id, kinds=(WAITING, GATES_OPEN))
            told = waiting_reason(events) or ""
        if reason != told:
            kind, message = (WAITING, reason) if reason else (GATES_OPEN, OPEN_MESSAGE)
            try:
                self.instance.event_store.add(run.id, kind, message)
            except NotFoundError:
                return  # deleted meanwhile
        self.told[run.id] = reason

    def keep(self, queued: Iterable[str]) -> None:
        """Forget the runs not among ``queued`` (they started, or were canceled)."""
        ids = set(queued)
        for run_id in [r for r in self.told if r not in ids]:
            del self.told[run_id]


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _span(start: float, end: float) -> str:
    """An interval as ``runs show`` prints one: half-open, in UTC."""
    return f"[{_at(start)}, {_at(end)})"
