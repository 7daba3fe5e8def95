"""Launching: queued runs, first in first out, take their slots and start in a worker.

The queue is read per job, in one query for all jobs: each job's oldest few
(a window per job, however long the queue). The runs are tried
oldest first across jobs; a job whose run cannot start (a slot is not free,
an ``is_fresh`` gate is shut) is passed over for the rest of the pass, so its
newer runs do not overtake it and it does not hold up the other jobs. A run
that cannot start because its pool is full closes the pool for the pass in
the same way. A run waiting for its own interval (a shut
``is_matching_interval_fresh`` gate) is the exception: it is passed over
alone, and the job's later runs are tried (up to the window read), with
what it waits for recorded as an event (``freshness.WaitNotes``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from conveyor.definitions.job import Job
from conveyor.errors import InvalidTransitionError
from conveyor.execution.state import REFRESH_TAG
from conveyor.scheduler.admission import admit, slots_of
from conveyor.scheduler.firing import Scope
from conveyor.scheduler.freshness import Coverage, Wait, WaitNotes, wait_of
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunRecord
from conveyor.storage.states import RunStatus

log = logging.getLogger("conveyor.daemon")

# The oldest queued runs of a job read in one pass.
PER_JOB = 100

Launcher = Callable[[str, Instance], Any]


class WorkerLauncher:
    """Starts each run in its own run-worker process, through a launch server.

    The server (``conveyor.execution.runner --serve``) has imported Conveyor
    and the workspace once and forks a worker per run, so a run is running
    within milliseconds. If the server is gone, the run gets a worker of its
    own and a new server starts.

    A daemon of environments has one server per active version (``origins``): a
    server has one version's code loaded, so a run goes to the server of the
    version it is pinned to, and a run of a version no longer active starts in a
    process of its own, which loads its version.
    """

    def __init__(
        self,
        origin: dict[str, Any],
        origins: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.origin = origin
        # A daemon of files has one server, whatever a run's origin says (as it always had).
        self.by_origin = origins is not None
        self.origins = origins if origins is not None else (lambda: [origin])
        self.servers: dict[str, Any] = {}
        # The origins whose launch server refused to fork (the workspace starts threads).
        self.refusing: set[str] = set()

    @property
    def server(self) -> Any:
        """The launch server of the daemon's workspace (of a daemon of files)."""
        return self.servers.get(server_key(self.origin))

    @property
    def refused(self) -> bool:
        return server_key(self.origin) in self.refusing

    def __call__(
        self, run_id: str, instance: Instance, origin: dict[str, Any] | None = None
    ) -> Any:
        from conveyor.execution.runner import launch, start

        mine = origin if self.by_origin and origin is not None else self.origin
        server = self.servers.get(server_key(mine))
        if server is not None and launch(server, run_id):
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
        """Have a launch server ready for each origin, unless one refused to fork for its
        workspace; stop the servers of origins no longer served (their workers go on)."""
        from conveyor.execution.runner import REFUSED, start_server

        wanted = {server_key(o): o for o in self.origins()}
        for key in [k for k in self.servers if k not in wanted]:
            _stop_server(self.servers.pop(key))
        for key, origin in wanted.items():
            if key in self.refusing:
                continue
            server = self.servers.get(key)
            if server is not None and server.poll() == REFUSED:
                self.refusing.add(key)
                log.warning(
                    "the launch server will not fork for this workspace (it starts threads at "
                    "import; see CONVEYOR_HOME/workers/launch-server.log): each run starts in a "
                    "fresh process"
                )
                continue
            if server is None or server.poll() is not None:
                self.servers[key] = start_server(instance, origin)

    def close(self) -> None:
        """Stop the launch servers (their running workers go on)."""
        servers, self.servers = self.servers, {}
        for server in servers.values():
            _stop_server(server)


def server_key(origin: dict[str, Any]) -> str:
    """What tells launch servers apart: the code they load."""
    where = ("file", "module", "folder", "environment", "version")
    return repr([origin.get(k) for k in where])


def _stop_server(server: Any) -> None:
    if server.stdin is not None:
        server.stdin.close()
    try:
        server.wait(timeout=10)
    except Exception:
        server.kill()
        server.wait()


class Launching:
    """The daemon's step that starts queued runs, and what it keeps of the runs it started."""

    def __init__(self, scope: Scope, launch: Launcher) -> None:
        self.scope = scope
        self.launch = launch
        # Runs this daemon started and has not seen end yet (see report_ended).
        self.started: dict[str, str] = {}
        self.children: list[Any] = []
        # What each gated run waits for, as recorded in its events.
        self.notes = WaitNotes(scope.instance)

    def __call__(self) -> None:
        scope = self.scope
        store = scope.instance.run_store
        candidates: list[RunRecord] = []
        # The jobs with more queued runs than were read, and the newest run read of each.
        more: dict[str, tuple[float, str]] = {}
        for name, oldest in store.oldest_queued_per_job(scope.jobs, PER_JOB).items():
            candidates += oldest
            if len(oldest) == PER_JOB:
                more[name] = oldest[-1].cursor
        candidates.sort(key=lambda r: r.cursor)
        self.notes.keep(r.id for r in candidates)
        done = Coverage(scope.instance, candidates, scope.jobs)
        # The jobs whose every run waits for an upstream to be fresh, and for which.
        shut: dict[str, Wait] = {}
        blocked: set[str] = set()
        full_pools: set[str] = set()

        def waits(name: str) -> bool:
            pool = scope.jobs[name].pool
            return name in blocked or (pool is not None and pool in full_pools)

        for run in candidates:
            if any(run.cursor > last and not waits(name) for name, last in more.items()):
                break  # runs of a job that can start, older than this one, are not read yet
            job = scope.jobs[run.job_name]
            if waits(job.name):
                if job.name in shut:
                    self.notes.note(run, shut[job.name])
                continue
            if job.freshness:
                wait = wait_of(scope.instance, run, job, scope.jobs, scope.clock(), done)
                self.notes.note(run, wait)
                if wait is not None:
                    if not wait.own:
                        blocked.add(job.name)  # its runs wait until the upstream is fresh
                        shut[job.name] = wait
                    elif more.get(job.name) == run.cursor:
                        blocked.add(job.name)  # the last read: its later runs wait a pass
                    continue  # waiting for its own interval, it holds up no later run
            try:
                if not admit(scope.instance, job, run):
                    blocked.add(job.name)  # keep this job's queue in order
                    if job.pool is not None and self._pool_full(job):
                        full_pools.add(job.pool)  # and its pool's
                    continue
            except InvalidTransitionError:
                continue  # another daemon started it, or it was canceled
            self._pass_refresh(job, run)
            log.info("run %s of %s starting (%s)", run.id[:8], job.name, run.trigger)
            self.started[run.id] = job.name
            if isinstance(self.launch, WorkerLauncher):  # to the server of the run's code
                child = self.launch(run.id, scope.instance, run.origin or None)
            else:
                child = self.launch(run.id, scope.instance)
            if child is not None:
                self.children.append(child)

    def _pool_full(self, job: Job) -> bool:
        scope = f"pool:{job.pool}"
        for name, limit in slots_of(self.scope.instance, job):
            if name == scope:
                return len(self.scope.instance.lease_store.held(scope)) >= limit
        return False

    def _pass_refresh(self, job: Job, run: RunRecord) -> None:
        """The refresh cascade, as a run starts.

        The run refreshes if it was triggered with a refresh or an upstream
        left one for its job. Then, by the job's ``refresh=``: ``"auto"``
        passes a refresh it received on to the jobs gated on it, ``"always"``
        sends one whenever it starts, ``"block"`` passes nothing on.
        """
        instance = self.scope.instance
        refreshed = run.tags.get(REFRESH_TAG) == "true"
        # Refresh signals go only to jobs gated on another (see below): others have none.
        if job.freshness and instance.signal_store.take(job.name, "refresh"):
            if not refreshed:
                instance.run_store.add_tags(run.id, {REFRESH_TAG: "true"})
            refreshed = True
        if job.refresh == "always" or (job.refresh == "auto" and refreshed):
            downstream = [
                j.name
                for j in self.scope.jobs.values()
                if any(g.upstream == job.name for g in j.freshness)
            ]
            if downstream:
                instance.signal_store.send(downstream, "refresh")

    def report_ended(self) -> None:
        """Log how the runs this daemon started ended, once each."""
        if not self.started:
            return
        for run in self.scope.instance.run_store.ended_among(list(self.started)):
            name = self.started.pop(run.id)
            assert run.ended_at is not None
            took = (run.ended_at - (run.started_at or run.ended_at)).total_seconds()
            why = f": {str(run.error).splitlines()[0][:200]}" if run.error else ""
            ok = run.status is RunStatus.SUCCESS
            log.log(
                logging.INFO if ok else logging.WARNING,
                "run %s of %s: %s in %s%s",
                run.id[:8],
                name,
                run.status,
                f"{took * 1000:.0f}ms" if took < 1 else f"{took:.1f}s",
                why,
            )

    def reap(self, wait: float = 0.0) -> None:
        """Collect run workers that exited (up to ``wait`` seconds for the others)."""
        deadline = time.monotonic() + wait
        alive = []
        for child in self.children:
            if not hasattr(child, "poll"):
                continue
            try:
                if child.wait(max(0.0, deadline - time.monotonic())) is not None:
                    continue
            except Exception:  # still running after the wait
                alive.append(child)
        self.children = alive
