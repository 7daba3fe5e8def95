"""Chained triggers and run retries, fired from the run ends in the order they were written.

``job.success:``, ``job.fail:`` and ``job.completed:`` fire a tick keyed by the
upstream run, ``execute={"retries": N}`` one keyed by the failed run, so each
fires once whichever daemon sees the end first. The ends are read by their
sequence id (``cursor``): no clock decides what is new, so a run ended by a
process whose clock is behind fires its chains like any other.

What an end fires is the daemon's workspace's business only, and only from
the day the chain exists:

- a chain (or a job's retries) fires for the ends after the one that was
  newest when a daemon first saw it (``storage.chains``), so a daemon
  started on a home full of old runs replays none of them;
- the upstream run must be of this workspace (its recorded ``origin``): a job
  of the same name run from another file is another job;
- a partial run (``--select``) is not its job's success or failure, unless
  the chain says ``?partial``.

How far the ends were read is stored per workspace, so that a restarted
daemon goes on from where the daemons of its workspace stopped, whatever the
daemons of other workspaces read meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from collections.abc import Mapping
from typing import Any

from conveyor.definitions.job import Job
from conveyor.definitions.selection import select
from conveyor.definitions.triggers import Trigger
from conveyor.errors import ConveyorError
from conveyor.execution.rerun import RETRY_TAG
from conveyor.scheduler.cursor import OrderedCursor, StoredCursor
from conveyor.scheduler.firing import Scope, same_partition
from conveyor.scheduler.incremental import IntervalWalk
from conveyor.scheduler.intervals import IntervalEnds
from conveyor.storage.chains import ChainStore
from conveyor.storage.records import RunRecord
from conveyor.storage.runs import RunEnd
from conveyor.storage.states import RunStatus
from conveyor.workspace import Workspace

# Where the daemons of a workspace keep how far they have read the run ends: this, a
# colon and a digest of the workspace (``chain_cursor``).
CHAIN_CURSOR = "conveyor/chains"
CHAINS = {
    "job.success": (RunStatus.SUCCESS,),
    "job.fail": (RunStatus.FAILURE,),
    "job.completed": (RunStatus.SUCCESS, RunStatus.FAILURE),
}
# The name under which a job's retries are recorded with the chains.
RETRIES = "retry"

# Each run's recorded file is compared with the workspace's, symbolic links resolved.
_real_path = functools.lru_cache(maxsize=1024)(os.path.realpath)


def workspace_key(origin: Mapping[str, Any]) -> str:
    """What names a workspace in storage: ``file:<real path>``, ``module:<name>`` or
    ``folder:<real path>``."""
    if origin.get("file"):
        return f"file:{_real_path(str(origin['file']))}"
    if origin.get("module"):
        return f"module:{origin['module']}"
    if origin.get("folder"):
        return f"folder:{_real_path(str(origin['folder']))}"
    return f"origin:{sorted(origin.items())!r}"


def chain_cursor(workspace: str) -> str:
    """The stored cursor of the daemons of ``workspace`` (a ``workspace_key``)."""
    return f"{CHAIN_CURSOR}:{hashlib.sha256(workspace.encode()).hexdigest()[:32]}"


def places(workspace: Workspace, job: Job) -> frozenset[str]:
    """Where a run of ``job`` of ``workspace`` may say it came from: the workspace (the
    command line and the daemon record it), or the file that defines the job (a run
    started from Python, ``job.run()``, records that); in a daemon of environments, the
    environment of the job (``prod.etl``: ``prod``)."""
    environments = workspace.origin.get("environments")
    if environments:
        return frozenset(f"environment:{e}" for e in environments if job.name.startswith(f"{e}."))
    found = {workspace_key(workspace.origin)}
    try:
        source = inspect.getsourcefile(job.fn)
    except TypeError:
        source = None
    if source:
        found.add(workspace_key({"file": source}))
    return frozenset(found)


def run_places(origin: Mapping[str, Any] | None) -> set[str]:
    """Where a run says it came from (none, for a run with no recorded origin)."""
    if not origin:
        return set()
    found = set()
    if origin.get("file"):
        found.add(workspace_key({"file": origin["file"]}))
    if origin.get("module"):
        found.add(workspace_key({"module": origin["module"]}))
    if origin.get("folder"):
        found.add(workspace_key({"folder": origin["folder"]}))
    if origin.get("environment"):
        found.add(f"environment:{origin['environment']}")
    return found


def is_whole(run: RunRecord, job: Job) -> bool:
    """The run ran every task of ``job``: no selection, or one that picks them all."""
    if run.selection is None:
        return True
    if job.graph is None:
        return False
    try:
        return select(job.graph, run.selection) == set(job.graph.nodes)
    except ConveyorError:
        return False  # a selection of tasks the job no longer has


class Chains:
    """The daemon's step: fire the chains and retries of the runs that ended since the
    last pass, and wake the walks of interval-mode jobs whose runs ended."""

    def __init__(self, scope: Scope, intervals: IntervalEnds, walk: IntervalWalk) -> None:
        self.scope = scope
        self.intervals = intervals
        self.walk = walk
        self.workspace = workspace_key(scope.workspace.origin)
        self.starts = ChainStore(scope.instance.db)
        # The run end after which each (job, trigger) fires, once read from storage.
        self.after: dict[tuple[str, str], int] | None = None
        # Where runs of each upstream job of this workspace may say they came from.
        self._places: dict[str, frozenset[str]] = {}
        store = scope.instance.run_store
        self.cursor: StoredCursor[RunEnd] = StoredCursor(
            chain_cursor(self.workspace),
            scope.instance.sensor_store,
            OrderedCursor(after=store.ends_after, among=store.ends_among, id_of=_end_id),
            first=self._first,
            before=store.last_end_id,
        )

    def _first(self) -> int:
        """Where the daemons of a workspace new to the cursor read from: the oldest point
        of its chains (nothing before it fires anything)."""
        assert self.after is not None
        if self.after:
            return min(self.after.values())
        return self.scope.instance.run_store.last_end_id()

    def _watched(self) -> list[tuple[str, str]]:
        """Each (job, trigger) that ends fire: the chains, and the jobs with retries."""
        watched = []
        for job in self.scope.jobs.values():
            watched += [(job.name, str(t)) for t in job.triggers if t.type in CHAINS]
            if job.execute.retries:
                watched.append((job.name, RETRIES))
        return watched

    def __call__(self, now: float) -> None:
        jobs = self.scope.jobs
        watchers: dict[str, list[tuple[Job, Trigger, tuple[RunStatus, ...]]]] = {}
        for job in jobs.values():
            for trigger in job.triggers:
                if trigger.type in CHAINS:
                    watchers.setdefault(trigger.expr, []).append(
                        (job, trigger, CHAINS[trigger.type])
                    )
        self.intervals.stale()  # read the runs that ended since, when an interval is asked
        retrying = {name for name, job in jobs.items() if job.execute.retries}
        walking = {n for n, j in jobs.items() if j.incremental_mode == "interval"}
        if not watchers and not retrying and not walking:
            return
        if self.after is None:
            self.after = self.starts.first_seen(self.workspace, self._watched(), now)
        batch = self.cursor.read()
        wanted = [e for e in batch.rows if e.job_name in watchers or e.job_name in retrying]
        runs = self.scope.instance.run_store.get_many(e.run_id for e in wanted)
        for end in batch.rows:
            if end.job_name in walking:
                self.walk.ended(end.job_name)  # its next period may be due
            ended = runs.get(end.run_id)
            if ended is None or not self._ours(ended):
                continue
            whole = is_whole(ended, jobs[ended.job_name])
            for job, trigger, statuses in watchers.get(ended.job_name, []):
                if (
                    ended.status in statuses
                    and end.id > self.after[(job.name, str(trigger))]
                    and (whole or trigger.partial)
                ):
                    self._chain(job, str(trigger), ended, now)
            if (
                ended.job_name in retrying
                and ended.status is RunStatus.FAILURE
                and end.id > self.after[(ended.job_name, RETRIES)]
            ):
                self._retry(ended)
        self.scope.ticks.flush()
        self.cursor.commit(batch, now)

    def _ours(self, run: RunRecord) -> bool:
        """The run is of a job of this workspace (not of a namesake elsewhere)."""
        job = self.scope.jobs.get(run.job_name)
        if job is None:
            return False
        if job.name not in self._places:
            self._places[job.name] = places(self.scope.workspace, job)
        return bool(run_places(run.origin) & self._places[job.name])

    def _chain(self, job: Job, name: str, upstream: RunRecord, now: float) -> None:
        assert upstream.ended_at is not None
        self.scope.ticks.add(
            job,
            f"{job.name}/{name}@{upstream.id}",
            name,
            upstream.ended_at.timestamp(),
            tags={"upstream_run": upstream.id},
            interval=self.intervals.interval(job, now),
            partition=same_partition(job, upstream),
        )

    def _retry(self, failed: RunRecord) -> None:
        job = self.scope.jobs[failed.job_name]
        done = int(failed.tags.get(RETRY_TAG, "0"))
        if done >= job.execute.retries:
            return
        assert failed.ended_at is not None
        tags = {**failed.tags, RETRY_TAG: str(done + 1)}
        self.scope.ticks.add(
            job,
            f"{job.name}/retry@{failed.id}",
            "retry",
            failed.ended_at.timestamp(),
            tags=tags,
            parent=failed,
        )


def _end_id(end: RunEnd) -> int:
    return end.id
