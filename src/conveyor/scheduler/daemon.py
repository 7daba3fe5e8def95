"""The scheduler daemon: fires triggers exactly once, launches queued runs, ends dead ones.

One pass (every ``POLL`` seconds) does these things:

1. timed triggers (``schedule:``, ``every:``, ``once:``): each due tick is
   recorded with its queued run in one transaction under a unique key; a
   job with ``incremental_mode="interval"`` gets its next missing period
   instead (``scheduler.incremental``);
2. chained triggers (``job.success:``, ``job.fail:``, ``job.completed:``) and
   run retries (``execute={"retries": N}``): runs that ended recently fire
   ticks keyed by the upstream run, so each fires once;
3. the launcher: queued runs, oldest first, take a concurrency slot of their
   job and start in their own run-worker process;
4. the monitor: a run whose process is gone ends ``failure``, its unfinished
   tasks closed and its slots released; a start whose worker never came goes
   back to the queue (``scheduler.monitor`` says when a run is dead).

Several daemons may run against one database; the tick keys, the slot keys
and the guarded status changes make them agree without talking.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from conveyor.definitions.job import Job
from conveyor.definitions.sensor import SensorContext
from conveyor.errors import ConveyorError, InvalidTransitionError, WorkspaceError
from conveyor.execution.launch import check_partition, prepare
from conveyor.execution.rerun import RETRY_TAG
from conveyor.execution.state import REFRESH_TAG
from conveyor.scheduler.admission import admit
from conveyor.scheduler.freshness import blocked_by
from conveyor.scheduler.incremental import next_period_run
from conveyor.scheduler.monitor import RunJudge
from conveyor.scheduler.timing import due, next_after, period_before, previous_instant
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.schema import runs
from conveyor.storage.states import RunStatus
from conveyor.storage.ticks import TickSpec
from conveyor.workspace import Workspace

log = logging.getLogger("conveyor.daemon")

POLL = 0.1
# The most ticks fired in one transaction.
FIRE_BATCH = 500
# How often the daemon removes old run-worker logs (seconds).
PRUNE_EVERY = 3600.0
# Where the daemons keep how far they have read the webhook calls.
WEBHOOK_CURSOR = "conveyor/webhooks"
CHAIN_CURSOR = "conveyor/chains"
CHAINS = {
    "job.success": (RunStatus.SUCCESS,),
    "job.fail": (RunStatus.FAILURE,),
    "job.completed": (RunStatus.SUCCESS, RunStatus.FAILURE),
}

Launcher = Callable[[str, Instance], Any]


class WorkerLauncher:
    """Starts each run in its own run-worker process, through a launch server.

    The server (``conveyor.execution.runner --serve``) has imported Conveyor
    and the workspace once and forks a worker per run, so a run is running
    within milliseconds. If the server is gone, the run gets a worker of its
    own and a new server starts.
    """

    def __init__(self, origin: dict[str, Any]) -> None:
        self.origin = origin
        self.server: Any = None

    def __call__(self, run_id: str, instance: Instance) -> Any:
        from conveyor.execution.runner import launch, start

        if self.server is not None and launch(self.server, run_id):
            return None  # the server reaps its workers
        worker = start(run_id, instance)
        self.warm(instance)
        return worker

    def prune(self, instance: Instance) -> None:
        """Remove old run-worker logs (see ``runner.prune_worker_logs``)."""
        from conveyor.execution.runner import prune_worker_logs

        removed = prune_worker_logs(instance)
        if removed:
            log.info("removed %d run-worker logs older than a week", removed)

    def warm(self, instance: Instance) -> None:
        """Have a launch server ready."""
        from conveyor.execution.runner import start_server

        if self.server is None or self.server.poll() is not None:
            self.server = start_server(instance, self.origin)

    def close(self) -> None:
        """Stop the launch server (its running workers go on)."""
        server, self.server = self.server, None
        if server is not None and server.stdin is not None:
            server.stdin.close()
            try:
                server.wait(timeout=10)
            except Exception:
                server.kill()
                server.wait()


def run_interval(job: Job, at: float, last_end: float | None) -> tuple[float, float] | None:
    """The interval of a run of ``job`` fired at ``at``, by its timed trigger.

    A tick's run covers the period that just elapsed; an event's or a manual
    run the last elapsed period of the job's timed trigger. The start is
    pulled back to ``last_end``, where the last successful run's interval
    ended, so that no gap is left between intervals (after downtime, with
    catchup "latest").
    """
    timed = job.timed_trigger
    if timed is None:
        return None
    period = period_before(timed, previous_instant(timed, at))
    if period is None:
        return None
    start, end = period
    if last_end is not None and last_end < start:
        start = last_end
    if job.interval is not None:
        start = max(start, job.interval.start.timestamp())
        if start >= end:
            return None
    return (start, end)


def check_references(workspace: Workspace) -> None:
    """Every job a trigger or a freshness gate names must be in the workspace."""
    for sensor in workspace.sensors.values():
        if sensor.job_name not in workspace.jobs:
            raise WorkspaceError(
                f"@sensor {sensor.name!r} runs job {sensor.job_name!r}, which is not in "
                f"{workspace.describe()} (jobs: {', '.join(sorted(workspace.jobs))})"
            )
    for job in workspace.jobs.values():
        named = [(str(t), t.expr) for t in job.triggers if t.type in CHAINS]
        named += [(str(g), g.upstream) for g in job.freshness]
        for text, upstream in named:
            if upstream not in workspace.jobs:
                kind = "trigger" if text.split(":")[0] in CHAINS else "freshness"
                raise WorkspaceError(
                    f"Invalid {kind} {text!r} of job {job.name!r}: no job {upstream!r} in "
                    f"{workspace.describe()} (jobs: {', '.join(sorted(workspace.jobs))})"
                )


class Daemon:
    """Evaluates the triggers of a workspace's jobs and runs what they queue."""

    def __init__(
        self,
        workspace: Workspace,
        instance: Instance,
        *,
        clock: Callable[[], float] = time.time,
        launch: Launcher | None = None,
        poll: float = POLL,
        lease: float | None = None,
    ) -> None:
        self.workspace = workspace
        self.instance = instance
        self.clock = clock
        self._workers = WorkerLauncher(workspace.origin) if launch is None else None
        self.launch: Launcher = launch if launch is not None else self._workers  # type: ignore[assignment]
        self.poll = poll
        self.started = clock()
        self.origin = workspace.origin
        check_references(workspace)
        # Chained triggers read runs that ended after this instant (less a margin);
        # loaded from storage on first use, so that runs that ended while no daemon
        # ran still fire their chains.
        self._ended_watermark: float | None = None
        self._chain_saved = 0.0
        self._children: list[Any] = []
        # Webhook calls are read from this instant on (less a margin); loaded from
        # storage on first use, so that calls made while no daemon ran still fire.
        self._webhook_watermark: float | None = None
        # Per interval-mode job, the start of its oldest missing period (all before are done).
        self._walked: dict[str, float] = {}
        # Per interval-mode job: nothing to queue before this instant, unless one of
        # its runs ended (then it is in _interval_ended).
        self._interval_idle: dict[str, float] = {}
        self._interval_ended: set[str] = set()
        # Per timed job whose runs' intervals were asked for: its newest successful
        # interval end, and when ended runs were last read for it (see _interval).
        self._interval_ends: dict[str, float | None] = {}
        self._ends_read_at = clock()
        self._ends_fresh = False
        # Per timed trigger (job, trigger): its newest fired tick and when the next is due.
        self._last_tick: dict[tuple[str, str], float | None] = {}
        self._next_tick: dict[tuple[str, str], float] = {}
        # Ticks to fire at the end of the current step of the pass (see _flush).
        self._pending: list[TickSpec] = []
        # When old run-worker logs were last removed.
        self._pruned = float("-inf")
        # Runs this daemon started and has not seen end yet (see report_ended).
        self._started: dict[str, str] = {}
        self._judge = RunJudge(instance, lease=lease)

    @property
    def jobs(self) -> dict[str, Job]:
        return self.workspace.jobs

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set.

        While the database cannot be reached, passes back off and the outage
        is logged once when it starts and once when it ends; see ``outage``.
        """
        from conveyor.scheduler.outage import PassFailures

        log.info("daemon watching %d jobs", len(self.jobs))
        if self._workers is not None:
            self._workers.warm(self.instance)
        failures = PassFailures(self.instance.db.safe_url, self.poll, log)
        try:
            while not stop.is_set():
                started = time.monotonic()
                wait: float | None = None
                try:
                    self.tick()
                except Exception as e:
                    wait = failures.failed(e)
                else:
                    failures.passed()
                if wait is None:
                    wait = self.poll - (time.monotonic() - started)
                stop.wait(max(0.0, wait))
        finally:
            if self._workers is not None:
                self._workers.close()

    def tick(self) -> None:
        """One pass: fire timed and chained triggers, launch, monitor."""
        now = self.clock()
        self.fire_timed(now)
        self.fire_chained(now)  # before the walk: a run that just ended moves it on
        self.advance_intervals(now)
        self.evaluate_sensors(now)
        self.fire_webhooks(now)
        self.launch_queued()
        self.report_ended()
        self.end_dead_runs(now)
        self.stop_overdue_runs(now)
        self.reap()
        if self._workers is not None and now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self._workers.prune(self.instance)

    def report_ended(self) -> None:
        """Log how the runs this daemon started ended, once each."""
        if not self._started:
            return
        ids = list(self._started)
        columns = (runs.c.id, runs.c.status, runs.c.started_at, runs.c.ended_at, runs.c.error)
        for i in range(0, len(ids), 500):
            with self.instance.db.read() as conn:
                rows = conn.execute(
                    select(*columns).where(
                        runs.c.id.in_(ids[i : i + 500]), runs.c.ended_at.is_not(None)
                    )
                ).all()
            for row in rows:
                name = self._started.pop(row.id)
                took = row.ended_at - (row.started_at or row.ended_at)
                why = f": {str(row.error).splitlines()[0][:200]}" if row.error else ""
                ok = row.status == str(RunStatus.SUCCESS)
                log.log(
                    logging.INFO if ok else logging.WARNING,
                    "run %s of %s: %s in %s%s",
                    row.id[:8],
                    name,
                    row.status,
                    f"{took * 1000:.0f}ms" if took < 1 else f"{took:.1f}s",
                    why,
                )

    def reap(self, wait: float = 0.0) -> None:
        """Collect run workers that exited (up to ``wait`` seconds for the others)."""
        deadline = time.monotonic() + wait
        alive = []
        for child in self._children:
            if not hasattr(child, "poll"):
                continue
            try:
                if child.wait(max(0.0, deadline - time.monotonic())) is not None:
                    continue
            except Exception:  # still running after the wait
                alive.append(child)
        self._children = alive

    # -- triggers ---------------------------------------------------------------------------

    def _queue(
        self,
        job: Job,
        key: str,
        trigger: str,
        at: float,
        tags: dict[str, str] | None = None,
        parent: RunRecord | None = None,
        interval: tuple[float, float] | None = None,
        run_config: dict[str, Any] | None = None,
        partition: str | None = None,
    ) -> None:
        """Collect tick ``key`` with its queued run (``_flush`` fires it); a partitioned
        job gets one run per key.

        The run takes ``partition`` when given (or its parent's), else one run
        is queued per key of the job's partitions, each under its own tick key.
        """
        run: dict[str, Any] = {
            "job_version": job.version,
            "tags": {**job.tags, **(tags or {})},
            "origin": {**self.origin, "job": job.name},
            "interval": interval,
            "run_config": run_config,
        }
        if parent is not None:
            run.update(
                run_config=parent.run_config,
                selection=parent.selection,
                parent_run_id=parent.id,
                root_run_id=parent.root_run_id or parent.id,
            )
            partition = parent.partition_key
            if parent.interval_start and parent.interval_end:
                run["interval"] = (
                    parent.interval_start.timestamp(),
                    parent.interval_end.timestamp(),
                )
        keys: list[str | None] = [partition]
        if partition is None and job.partitions is not None:
            keys = list(job.partitions)
        for part in keys:
            self._pending.append(
                TickSpec(
                    key if part is None else f"{key}#{part}",
                    job.name,
                    trigger,
                    at,
                    {**run, "partition": part},
                )
            )

    def _flush(self) -> None:
        """Fire the ticks ``_queue`` collected, in batches of one transaction each.

        Called before a step saves how far it got (a cursor), so that a
        failure leaves the cursor behind the ticks that did not fire.
        """
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), FIRE_BATCH):
            batch = pending[i : i + FIRE_BATCH]
            for tick, rid in zip(batch, self.instance.tick_store.fire_many(batch), strict=True):
                if rid is not None:
                    part = tick.run.get("partition")
                    where = tick.job_name if part is None else f"{tick.job_name}[{part}]"
                    log.info("%s fired %s: run %s queued", tick.trigger, where, rid[:8])

    def fire_timed(self, now: float) -> None:
        """Fire the due ticks of timed triggers.

        Each trigger's newest tick is read from storage once, then kept here
        with the instant of its next tick, so a pass between ticks costs a
        comparison per trigger. Another daemon firing a tick first is seen
        when this one tries the same tick key.
        """
        self._ends_fresh = False  # read the runs that ended since, when an interval is asked
        for job in self.jobs.values():
            if job.incremental_mode == "interval":
                continue  # its periods are queued by advance_intervals
            # A job's interval= bounds its ticks: none before its start or after its end.
            floor = job.interval.start.timestamp() if job.interval else float("-inf")
            until = now
            if job.interval is not None and job.interval.end is not None:
                until = min(now, job.interval.end.timestamp())
            for trigger in job.triggers:
                if not trigger.is_timed:
                    continue
                name = (job.name, str(trigger))
                if now < self._next_tick.get(name, now):
                    continue
                if name in self._last_tick:
                    last = self._last_tick[name]
                else:
                    last = self.instance.tick_store.last(job.name, str(trigger))
                if last is not None and last < floor:
                    last = floor
                since = max(self.started, floor)
                ticks = due(trigger, last, since, until, job.catchup)  # type: ignore[arg-type]
                for tick in ticks:
                    self._queue(
                        job,
                        f"{job.name}/{tick.key}",
                        tick.trigger,
                        tick.at,
                        interval=self._interval(job, tick.at),
                    )
                    last = tick.at if last is None else max(last, tick.at)
                self._last_tick[name] = last
                if ticks:  # look again next pass: a long catch-up goes on in batches
                    self._next_tick[name] = now
                    continue
                upcoming = next_after(trigger, now)
                if upcoming is None or (until < now and upcoming > until):
                    upcoming = float("inf")  # the trigger, or the job's interval=, is over
                self._next_tick[name] = upcoming
        try:
            self._flush()
        except Exception:
            # The ticks did not fire: read the newest ticks from storage again.
            self._last_tick.clear()
            self._next_tick.clear()
            raise

    def _interval(self, job: Job, at: float) -> tuple[float, float] | None:
        """``run_interval``, with each job's newest successful interval end kept here.

        A job's value is read once; after that, one query a pass (the first
        time an interval is asked for) reads the successful runs that ended
        since the last look, and moves the values on.
        """
        if job.timed_trigger is None:
            return None
        if not self._ends_fresh:
            self._refresh_interval_ends()
        if job.name not in self._interval_ends:
            self._interval_ends[job.name] = self.instance.run_store.last_interval_end(job.name)
        return run_interval(job, at, self._interval_ends[job.name])

    def _refresh_interval_ends(self) -> None:
        self._ends_fresh = True
        if not self._interval_ends:
            self._ends_read_at = self.clock()
            return
        # Runs commit a little after they end: look back a few seconds.
        since, self._ends_read_at = self._ends_read_at - 5.0, self.clock()
        for name, end in self.instance.run_store.success_interval_ends_since(since):
            if name in self._interval_ends:
                known = self._interval_ends[name]
                self._interval_ends[name] = end if known is None else max(known, end)

    def advance_intervals(self, now: float) -> None:
        """Queue the next missing period of each job with ``incremental_mode="interval"``.

        A job with nothing to queue (a run of it is active, its walk is caught
        up, or a failed period waits for the next tick) is looked at again at
        its next tick, or as soon as one of its runs ends (``fire_chained``
        notes those), so a quiet pass reads nothing for it.
        """
        for job in self.jobs.values():
            if job.incremental_mode != "interval":
                continue
            ended = job.name in self._interval_ended
            if not ended and now < self._interval_idle.get(job.name, now):
                continue
            self._interval_ended.discard(job.name)
            nxt = next_period_run(self.instance, job, now, self._walked)
            if nxt is not None:
                self._queue(job, nxt.key, "interval", nxt.at, interval=nxt.interval)
                self._interval_idle.pop(job.name, None)
            else:
                timed = job.timed_trigger
                assert timed is not None
                self._interval_idle[job.name] = next_after(timed, now) or float("inf")
        self._flush()

    def fire_webhooks(self, now: float) -> None:
        """One run per webhook call for each job with the trigger ``webhook:<path>``."""
        hooked: dict[str, list[Job]] = {}
        for job in self.jobs.values():
            for trigger in job.triggers:
                if trigger.type == "webhook":
                    hooked.setdefault(trigger.expr, []).append(job)
        if not hooked:
            return
        if self._webhook_watermark is None:
            stored, _ = self.instance.sensor_store.get(WEBHOOK_CURSOR)
            self._webhook_watermark = float(stored) if stored else self.started
        # Calls commit out of order by a little; the tick key makes a re-read harmless.
        calls = self.instance.webhook_calls_since(self._webhook_watermark - 5.0)
        for call in calls:
            for job in hooked.get(call["path"], []):
                payload = json.dumps(call["payload"]) if call["payload"] is not None else ""
                self._queue(
                    job,
                    f"{job.name}/webhook:{call['path']}@{call['id']}",
                    f"webhook:{call['path']}",
                    call["at"],
                    tags={
                        "webhook_call": str(call["id"]),
                        **({"webhook_payload": payload[:2000]} if payload else {}),
                    },
                )
        self._flush()
        if calls:
            newest = max(call["at"] for call in calls)
            self.instance.sensor_store.save(WEBHOOK_CURSOR, repr(newest), now)
            self._webhook_watermark = max(self._webhook_watermark, newest)

    def evaluate_sensors(self, now: float) -> None:
        """Call each sensor whose interval has passed; queue the runs it asks for."""
        for sensor in self.workspace.sensors.values():
            cursor, last = self.instance.sensor_store.get(sensor.name)
            if last is not None and now - last < sensor.interval:
                continue
            context = SensorContext(sensor.name, cursor, last)
            try:
                requests = sensor.evaluate(context)
            except Exception:
                log.exception("sensor %s failed; its cursor stays where it was", sensor.name)
                self.instance.sensor_store.save(sensor.name, cursor, now)
                continue
            job = self.jobs[sensor.job_name]
            for request in requests:
                try:
                    _, cfg = prepare(job, request.run_config, None, None)
                    partition = check_partition(job, request.partition)
                except ConveyorError as e:
                    log.error(
                        "sensor %s asked for a run of %s that cannot run: %s",
                        sensor.name,
                        job.name,
                        e,
                    )
                    continue
                key = request.run_key if request.run_key is not None else f"{now:.6f}"
                tags = {
                    **request.tags,
                    **({"run_key": request.run_key} if request.run_key is not None else {}),
                }
                self._queue(
                    job,
                    f"{job.name}/sensor:{sensor.name}@{key}",
                    f"sensor:{sensor.name}",
                    now,
                    tags=tags,
                    run_config=cfg.raw,
                    partition=partition,
                )
            self._flush()
            self.instance.sensor_store.save(sensor.name, context.cursor, now)

    def fire_chained(self, now: float) -> None:
        watchers: dict[str, list[tuple[Job, str, tuple[RunStatus, ...]]]] = {}
        for job in self.jobs.values():
            for trigger in job.triggers:
                if trigger.type in CHAINS:
                    watchers.setdefault(trigger.expr, []).append(
                        (job, str(trigger), CHAINS[trigger.type])
                    )
        self._ends_fresh = False  # read the runs that ended since, when an interval is asked
        retrying = {name for name, job in self.jobs.items() if job.execute.retries}
        walking = {n for n, j in self.jobs.items() if j.incremental_mode == "interval"}
        if not watchers and not retrying and not walking:
            return
        if self._ended_watermark is None:
            stored, saved = self.instance.sensor_store.get(CHAIN_CURSOR)
            if stored:
                self._ended_watermark, self._chain_saved = float(stored), saved or 0.0
            else:
                self._ended_watermark = self.started - 5.0
                self.instance.sensor_store.save(CHAIN_CURSOR, repr(self._ended_watermark), now)
                self._chain_saved = now
        since = self._ended_watermark
        with self.instance.db.read() as conn:
            rows = conn.execute(
                select(runs)
                .where(
                    runs.c.ended_at >= since,
                    runs.c.job_name.in_(set(watchers) | retrying | walking),
                )
                .order_by(runs.c.ended_at)
            ).all()
        for row in rows:
            ended = RunRecord.from_row(row)
            for job, name, statuses in watchers.get(ended.job_name, []):
                if ended.status in statuses:
                    assert ended.ended_at is not None
                    self._queue(
                        job,
                        f"{job.name}/{name}@{ended.id}",
                        name,
                        ended.ended_at.timestamp(),
                        tags={"upstream_run": ended.id},
                        interval=self._interval(job, now),
                        partition=_same_partition(job, ended),
                    )
            if ended.job_name in walking:
                self._interval_ended.add(ended.job_name)  # its next period may be due
            if ended.job_name in retrying and ended.status is RunStatus.FAILURE:
                self._retry(ended)
        self._flush()
        # Runs commit out of order by a little; look back a few seconds each pass.
        self._ended_watermark = max(since, now - 5.0)
        if rows or now - self._chain_saved > 10.0:
            self.instance.sensor_store.save(CHAIN_CURSOR, repr(self._ended_watermark), now)
            self._chain_saved = now

    def _retry(self, failed: RunRecord) -> None:
        job = self.jobs[failed.job_name]
        done = int(failed.tags.get(RETRY_TAG, "0"))
        if done >= job.execute.retries:
            return
        assert failed.ended_at is not None
        tags = {**failed.tags, RETRY_TAG: str(done + 1)}
        self._queue(
            job,
            f"{job.name}/retry@{failed.id}",
            "retry",
            failed.ended_at.timestamp(),
            tags=tags,
            parent=failed,
        )

    # -- launching and monitoring -----------------------------------------------------------

    def launch_queued(self) -> None:
        queued = self.instance.run_store.list(status=RunStatus.QUEUED, limit=500)
        blocked: set[str] = set()
        for run in sorted(queued, key=lambda r: r.cursor):
            job = self.jobs.get(run.job_name)
            if job is None or run.job_name in blocked:
                continue
            if job.freshness:
                gate = blocked_by(self.instance, run, job, self.jobs, self.clock())
                if gate is not None:
                    blocked.add(job.name)  # waits until the upstream is fresh
                    continue
            try:
                if not self._start(job, run):
                    blocked.add(job.name)  # keep this job's queue in order
                    continue
            except InvalidTransitionError:
                continue  # another daemon started it, or it was canceled
            self._pass_refresh(job, run)
            log.info("run %s of %s starting (%s)", run.id[:8], job.name, run.trigger)
            self._started[run.id] = job.name
            child = self.launch(run.id, self.instance)
            if child is not None:
                self._children.append(child)

    def _pass_refresh(self, job: Job, run: RunRecord) -> None:
        """The refresh cascade, as a run starts.

        The run refreshes if it was triggered with a refresh or an upstream
        left one for its job. Then, by the job's ``refresh=``: ``"auto"``
        passes a refresh it received on to the jobs gated on it, ``"always"``
        sends one whenever it starts, ``"block"`` passes nothing on.
        """
        refreshed = run.tags.get(REFRESH_TAG) == "true"
        # Refresh signals go only to jobs gated on another (see below): others have none.
        if job.freshness and self.instance.signal_store.take(job.name, "refresh"):
            if not refreshed:
                self.instance.run_store.add_tags(run.id, {REFRESH_TAG: "true"})
            refreshed = True
        if job.refresh == "always" or (job.refresh == "auto" and refreshed):
            downstream = [
                j.name
                for j in self.jobs.values()
                if any(g.upstream == job.name for g in j.freshness)
            ]
            if downstream:
                self.instance.signal_store.send(downstream, "refresh")

    def stop_overdue_runs(self, now: float) -> None:
        """Ask runs past their job's ``execute={"timeout": ...}`` to stop (they end canceled)."""
        for run in self.instance.run_store.list(status=RunStatus.RUNNING, limit=1000):
            job = self.jobs.get(run.job_name)
            if job is None or job.execute.timeout is None or run.started_at is None:
                continue
            if now - run.started_at.timestamp() > job.execute.timeout:
                status = self.instance.cancel_run(run.id)
                if status is RunStatus.CANCELING:
                    self.instance.event_store.add(
                        run.id,
                        "run_timeout",
                        f"run {run.id[:8]} of {job.name} ran past its execute timeout of "
                        f"{job.execute.timeout:g}s and is being stopped",
                    )
                    log.warning(
                        "run %s of %s ran past its timeout; stopping it", run.id[:8], job.name
                    )

    def _start(self, job: Job, run: RunRecord) -> bool:
        """Take the run's slots and mark it starting (``admission.admit``); False when a
        slot is not free, ``InvalidTransitionError`` when another daemon started it."""
        return admit(self.instance, job, run)

    def end_dead_runs(self, now: float) -> None:
        """End dead runs of the instance, whatever workspace they belong to (``monitor``)."""
        for verdict in self._judge.judge():
            log.warning(
                "run %s of %s %s: %s",
                verdict.run_id[:8],
                verdict.job_name,
                verdict.action,
                verdict.reason,
            )


def _same_partition(job: Job, upstream: RunRecord) -> str | None:
    """A chained run processes its upstream run's partition when the job has that key too."""
    key = upstream.partition_key
    return key if key is not None and job.partitions is not None and key in job.partitions else None
