"""The scheduler daemon: a small loop over independent steps, one module per duty.

One pass (every ``POLL`` seconds) runs these steps, in order:

1. timed triggers (``timed``): each due tick of ``schedule:``, ``every:`` and
   ``once:`` fires once;
2. chains and retries (``chains``): the runs that ended since the last pass,
   read in the order of their sequence ids, fire ``job.success:`` and kin, and
   ``execute={"retries": N}``;
3. the walk of ``incremental_mode="interval"`` jobs (``incremental``);
4. sensors (``sensors``): due evaluations start in threads of their own; the
   ones that returned are taken up;
5. webhooks (``webhooks``): one run per call and hooked job;
6. launching (``launching``): queued runs, first in first out, take their
   slots (``admission``) and start in a run-worker process; then how the runs
   this daemon started ended is logged;
7. the run monitor (``monitor``): dead runs end, lost starts go back to the
   queue;
8. overdue runs (``overdue``): runs past their timeout are asked to stop;
   runs past their ``fail_after`` fail (``fail_after``); queued runs past their
   ``expire_after`` are canceled as expired, before launching (``expiry``);
9. retention (``retention``): with ``CONVEYOR_RETENTION_DAYS``, old ended runs
   are deleted, about once an hour;
10. workloads (``supervisor``): services and apps are started, watched,
    restarted and stopped; they outlive the daemon, and the next one adopts them.

A step that raises is logged with its traceback, once per distinct failure
(``outage.PassFailures``), and the other steps of the pass still run; while
the database cannot be reached, the pass stops at the first step that finds
it away and the daemon backs off.

After its passes a daemon writes one row of health (``storage.daemon_status``):
when it passed last, how long the pass took, how many passes it made, and the
first error of a pass that had one. It writes after every pass that had an
error and otherwise at most once every ``BEAT_EVERY`` seconds (counting the
passes between), so a quiet daemon adds about one small write a second; a
beat that cannot be written is dropped, as the database may be away.

Several daemons may run against one database; the tick keys, the slot keys
and the guarded status changes make them agree without talking.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from conveyor.definitions.job import Job
from conveyor.errors import WorkspaceError
from conveyor.scheduler.chains import CHAIN_CURSOR, CHAINS, Chains
from conveyor.scheduler.environments import DEPLOYMENT, Activation, Environments
from conveyor.scheduler.expiry import Expiry
from conveyor.scheduler.fail_after import fail_late_runs
from conveyor.scheduler.firing import FIRE_BATCH, Scope
from conveyor.scheduler.incremental import IntervalWalk
from conveyor.scheduler.intervals import IntervalEnds, run_interval
from conveyor.scheduler.launching import Launcher, Launching, WorkerLauncher
from conveyor.scheduler.monitor import RunJudge
from conveyor.scheduler.outage import PassFailures, unreachable
from conveyor.scheduler.overdue import stop_overdue_runs
from conveyor.scheduler.retention import Retention
from conveyor.scheduler.sensors import SENSOR_TIMEOUT, Sensors
from conveyor.scheduler.supervisor import Supervisor
from conveyor.scheduler.timed import TimedTriggers
from conveyor.scheduler.webhooks import WEBHOOK_CURSOR, Webhooks
from conveyor.storage.instance import Instance
from conveyor.workspace import Workspace

__all__ = [
    "CHAINS",
    "CHAIN_CURSOR",
    "FIRE_BATCH",
    "POLL",
    "PRUNE_EVERY",
    "WEBHOOK_CURSOR",
    "Daemon",
    "Launcher",
    "WorkerLauncher",
    "check_references",
    "run_interval",
]

log = logging.getLogger("conveyor.daemon")

POLL = 0.1
# The most seconds between two health beats of a daemon whose passes go well.
BEAT_EVERY = 1.0
# The longest error message a beat keeps.
BEAT_ERROR_CHARS = 2000
# Set to 1 (meant for the daemon of ``conveyor dev``), a daemon stops its services and apps when it
# stops; otherwise they go on, and the next daemon adopts them.
STOP_WORKLOADS = "CONVEYOR_STOP_WORKLOADS_WITH_DAEMON"
# How often the daemon removes old run-worker logs (seconds).
PRUNE_EVERY = 3600.0

Step = Callable[[float], None]


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
        environments: Environments | None = None,
    ) -> None:
        check_references(workspace)
        self.workspace = workspace
        self.instance = instance
        self.clock = clock
        self.poll = poll
        self.origin = workspace.origin
        # A daemon of environments serves the jobs of their active versions (``environments``).
        self.environments = environments
        origins = environments.origins if environments is not None else None
        self._workers = WorkerLauncher(workspace.origin, origins) if launch is None else None
        self.launch: Launcher = launch if launch is not None else self._workers  # type: ignore[assignment]
        self.scope = Scope(workspace, instance, clock, clock())
        if environments is not None:
            self.scope.pins = environments.pins
            self.scope.ticks.pins = environments.pins
        intervals = IntervalEnds(self.scope)
        self._timed = TimedTriggers(self.scope, intervals)
        self._walk = IntervalWalk(self.scope)
        self._chains = Chains(self.scope, intervals, self._walk)
        self._sensors = Sensors(self.scope)
        self._webhooks = Webhooks(self.scope)
        self._launching = Launching(self.scope, self.launch)
        self._judge = RunJudge(instance, lease=lease)
        self._retention = Retention(instance)
        self._expiry = Expiry(self.scope)
        # When old run-worker logs were last removed.
        self._pruned = float("-inf")
        # The health beats (storage.daemon_status): this daemon's id, the passes since
        # the last beat written, and when (monotonic) and with what error it was written.
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.started_at = time.time()
        self._unbeaten = 0
        self._beaten_at = float("-inf")
        self._beaten_error: str | None = None
        self.supervisor = Supervisor(workspace, instance, self.id, self.host)
        self.steps: list[tuple[str, Step]] = [
            ("deployments", self.follow_deployments),  # first: the pass sees the active jobs
            ("timed triggers", self.fire_timed),
            ("chains", self.fire_chained),  # before the walk: a run that just ended moves it on
            ("interval walk", self.advance_intervals),
            ("sensors", self._sensors),
            ("webhooks", self.fire_webhooks),
            ("expired runs", self.expire_queued),  # before launching: expired runs wait no more
            ("launching", lambda now: self.launch_queued()),
            ("run reports", lambda now: self.report_ended()),
            ("run monitor", self.end_dead_runs),
            ("overdue runs", self.stop_overdue_runs),
            ("late runs", self.fail_late_runs),
            ("run workers", self._housekeeping),
            ("retention", self._retention),
            ("workloads", self.supervisor),
        ]

    @classmethod
    def of_environments(cls, names: list[str], instance: Instance, **options: Any) -> Daemon:
        """A daemon of the versions active in environments ``names`` (``--env``)."""
        environments = Environments(instance, names)
        return cls(environments.workspace, instance, environments=environments, **options)

    @property
    def jobs(self) -> dict[str, Job]:
        return self.workspace.jobs

    @property
    def started(self) -> float:
        """When the daemon started, by its clock: timed triggers fire from here on."""
        return self.scope.started

    @started.setter
    def started(self, value: float) -> None:
        self.scope.started = value

    @property
    def _children(self) -> list[Any]:
        return self._launching.children

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set.

        While the database cannot be reached, passes back off and the outage
        is logged once when it starts and once when it ends; see ``outage``.
        """
        if self.environments is not None:
            log.info("daemon serving the active versions of %s", self.environments.describe())
        else:
            log.info("daemon watching %d job%s", len(self.jobs), "" if len(self.jobs) == 1 else "s")
        if self._workers is not None:
            self._workers.warm(self.instance)
        failures = PassFailures(self.instance.db.safe_url, self.poll, log)
        try:
            while not stop.is_set():
                started = time.monotonic()
                wait: float | None = None
                errors = self.steps_of_a_pass()
                self.beat(time.monotonic() - started, errors, every=BEAT_EVERY)
                away = [e for _, e in errors if unreachable(e) is not None]
                for name, error in errors:
                    if unreachable(error) is None:
                        failures.failed(error, step=name)
                if away:
                    wait = failures.failed(away[0])
                else:
                    failures.passed()
                if wait is None:
                    wait = self.poll - (time.monotonic() - started)
                    # Wake for a tick when it is due, not up to a poll later.
                    wait = min(wait, self._timed.next_due() - self.clock())
                stop.wait(max(0.0, wait))
        finally:
            if self._workers is not None:
                self._workers.close()
            self.supervisor.close(stop=os.environ.get(STOP_WORKLOADS) == "1")
            self._sign_off()

    def _sign_off(self) -> None:
        """Remove this daemon's health row: it stopped, and says so rather than fall
        silent (a daemon killed leaves its row, and is reported silent)."""
        try:
            self.instance.daemon_status.forget(self.id)
        except Exception as e:  # the database is away: the row ages into "silent"
            log.debug("the daemon's health row was not removed: %s", e)

    def tick(self) -> None:
        """One pass; raises what a step raised (every step ran, unless the database
        was away)."""
        started = time.monotonic()
        errors = self.steps_of_a_pass()
        self.beat(time.monotonic() - started, errors)
        if len(errors) == 1:
            raise errors[0][1]
        if errors:
            raise ExceptionGroup(
                f"{len(errors)} steps of a scheduler pass failed: "
                f"{', '.join(name for name, _ in errors)}",
                [e for _, e in errors],
            )

    def steps_of_a_pass(self) -> list[tuple[str, Exception]]:
        """Run each step of one pass; return the steps that raised, with their errors."""
        now = self.clock()
        errors: list[tuple[str, Exception]] = []
        self.scope.begin_pass()
        try:
            for name, step in self.steps:
                try:
                    step(now)
                except Exception as e:
                    self.scope.ticks.discard()
                    errors.append((name, e))
                    if unreachable(e) is not None:
                        break  # the database is away: the next steps would find the same
        finally:
            self.scope.end_pass()
        return errors

    def beat(
        self, pass_seconds: float, errors: list[tuple[str, Exception]], *, every: float = 0.0
    ) -> bool:
        """Record a pass that took ``pass_seconds`` with ``errors`` (its first one is kept,
        as ``"step: Type: message"``) in the daemon's health row. With ``every``, a pass
        without a new error is only counted, unless ``every`` seconds passed since the
        last beat written. A beat that cannot be written is dropped (its passes are
        counted in the next). Returns whether one was written."""
        self._unbeaten += 1
        error = None
        if errors:
            step, e = errors[0]
            error = f"{step}: {type(e).__name__}: {e}"[:BEAT_ERROR_CHARS]
        now = time.monotonic()
        if now - self._beaten_at < every and (error is None or error == self._beaten_error):
            return False
        try:
            self.instance.daemon_status.beat(
                self.id,
                host=self.host,
                pid=self.pid,
                started_at=self.started_at,
                pass_seconds=pass_seconds,
                error=error,
                passes=self._unbeaten,
            )
        except Exception as e:  # the database may be away: the pass itself says so
            log.debug("the daemon's health beat was not written: %s", e)
            return False
        self._unbeaten, self._beaten_at, self._beaten_error = 0, now, error
        return True

    # -- the steps, callable one by one ------------------------------------------------------

    def follow_deployments(self, now: float) -> None:
        """In a daemon of environments, swap in the jobs of each environment whose active
        version changed, and queue a run of its jobs with ``trigger="deployment"``."""
        envs = self.environments
        if envs is None:
            return
        changed = envs.refresh()
        if changed:
            self._swapped(envs, changed, now)
        if envs.errors:
            raise envs.errors[0]

    def _swapped(self, envs: Environments, changed: list[Activation], now: float) -> None:
        check_references(self.workspace)
        # The triggers of the swapped jobs are read afresh: their ticks, chains and places.
        self._timed.forget()
        self._chains.after = None
        self._chains._places.clear()
        for activation in changed:
            for job in envs.deployment_jobs(activation.environment):
                self.scope.ticks.add(
                    job,
                    f"{job.name}/{DEPLOYMENT}@{activation.activation}",
                    DEPLOYMENT,
                    now,
                    tags={"deployment": f"{activation.environment}:v{activation.version}"},
                )
        self.scope.ticks.flush()
        if self._workers is not None:
            self._workers.warm(self.instance)

    def fire_timed(self, now: float) -> None:
        """Fire the due ticks of timed triggers (``timed``)."""
        self._timed(now)

    def fire_chained(self, now: float) -> None:
        """Fire the chains and retries of the runs that ended since (``chains``)."""
        self._chains(now)

    def advance_intervals(self, now: float) -> None:
        """Queue the next missing period of each interval-mode job (``incremental``)."""
        self._walk(now)

    def evaluate_sensors(self, now: float, *, wait: float = SENSOR_TIMEOUT) -> None:
        """Start the due sensor evaluations, and queue the runs of those that returned,
        waiting up to ``wait`` seconds for them (a pass does not wait)."""
        self._sensors(now, wait=wait)

    def fire_webhooks(self, now: float) -> None:
        """One run per webhook call for each job with the trigger ``webhook:<path>``."""
        self._webhooks(now)

    def launch_queued(self) -> None:
        """Start queued runs, oldest first, within their slots (``launching``)."""
        self._launching()

    def report_ended(self) -> None:
        """Log how the runs this daemon started ended, once each."""
        self._launching.report_ended()

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

    def expire_queued(self, now: float) -> None:
        """Cancel queued runs past their job's ``expire_after`` (``expiry``)."""
        self._expiry(now)

    def fail_late_runs(self, now: float) -> None:
        """Fail running runs past their job's ``fail_after`` (``fail_after``)."""
        fail_late_runs(self.scope, now)

    def stop_overdue_runs(self, now: float) -> None:
        """Ask runs past their job's ``execute={"timeout": ...}`` to stop (``overdue``)."""
        stop_overdue_runs(self.scope, now)

    def in_flight(self) -> list[str]:
        """The runs this daemon started that have not ended.

        Their workers are processes of their own sessions: they go on when the
        daemon stops (a terminal's Ctrl-C does not reach them), record their
        own ends, and any daemon's monitor ends them if they die.
        """
        started = list(self._launching.started)
        runs = self.instance.run_store.get_many(started)
        return [r for r in started if r in runs and not runs[r].status.is_terminal]

    def reap(self, wait: float = 0.0) -> None:
        """Collect run workers that exited (up to ``wait`` seconds for the others)."""
        self._launching.reap(wait)

    def _housekeeping(self, now: float) -> None:
        self.reap()
        if self._workers is not None and now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self._workers.prune(self.instance)
