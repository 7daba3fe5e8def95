"""The workload supervisor: a step of each daemon pass that keeps services and apps
running.

Each workload has one supervisor at a time across daemons: the one holding its
lease (``storage.workloads``: ``claim``/``renew`` by the database's clock, every
write fenced by the lease's token). The owner starts it in a session of its own
(so it outlives the daemon), watches it (exit, health path, memory), restarts it
with exponential backoff, and stops it (SIGTERM, a grace period, SIGKILL) when a
person asks or its code no longer declares it.

A daemon that claims a workload whose recorded process still runs on this host
(same pid, same start time) adopts it rather than start a second copy; a lease
held by a daemon that died on this host is taken at once rather than after it
runs out.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

import psutil

from conveyor.definitions.interactive import Interactive
from conveyor.execution.workload_launch import reap, same_process, signal_group
from conveyor.scheduler.workload_checks import code_digest
from conveyor.scheduler.workload_process import (
    EVERY,
    RENEW_EVERY,
    STOP_GRACE,
    Held,
    WorkloadProcesses,
)
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.storage.workloads import WORKLOAD_LEASE, Desired, WorkloadRecord
from conveyor.workspace import Workspace

log = logging.getLogger("conveyor.supervisor")


class Supervisor(WorkloadProcesses):
    """Keeps the workspace's workloads in the state people asked for; call once a pass."""

    def __init__(
        self,
        workspace: Workspace,
        instance: Instance,
        owner: str,
        host: str,
        *,
        lease: float = WORKLOAD_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace = workspace
        self.instance = instance
        self.store = instance.workloads
        self.owner = owner
        self.host = host
        self.lease = lease
        # Renewed well before it runs out, however short it is.
        self.renew_every = min(RENEW_EVERY, lease / 3)
        self.clock = clock
        self.held: dict[str, Held] = {}
        self._registered = False
        self._changed: set[str] = set()
        self._last = float("-inf")

    def __call__(self, now: float) -> None:
        mono = self.clock()
        if mono - self._last < EVERY:
            return
        self._last = mono
        self.supervise()

    def supervise(self) -> None:
        """One look at every workload: claim, renew, start, watch, stop."""
        if not self._registered:
            self._register()
        reap()
        records = self.store.all()
        for gone in set(self.held) - {r.name for r in records}:
            self.held.pop(gone)
        error: Exception | None = None
        for rec in records:
            try:
                self._one(rec)
            except Exception as e:
                log.exception("supervising workload %s failed", rec.name)
                error = error or e
        if error is not None:
            raise error

    def _register(self) -> None:
        """Record the workspace's workloads, each spec with the workspace it is from
        (a daemon of another workspace leaves it alone) and a digest of its code: a
        workload whose spec or code changed is restarted when adopted (the process
        that runs is the old code), not kept."""
        before = {r.name: r.spec for r in self.store.all()}
        code = code_digest(self.workspace.origin)
        for w in self.workspace.workloads.values():
            spec = {**w.spec(), "code": code, "workspace": self.workspace.describe()}
            if w.name in before and before[w.name] != spec:
                self._changed.add(w.name)
            # An interactive job waits for its first request.
            first: Desired = "stopped" if isinstance(w, Interactive) else "running"
            self.store.register(w.name, w.kind, spec, desired=first)
        self._registered = True

    def close(self, *, stop: bool = False) -> None:
        """Give up every lease: the workloads go on running and the next daemon adopts
        them at once; with ``stop`` (``conveyor dev``), they are stopped first (SIGTERM,
        SIGKILL after the grace), and the next daemon starts them anew."""
        if stop:
            self._stop_all()
        for name, held in list(self.held.items()):
            try:
                self.store.release(name, self.owner, held.token)
            except Exception as e:  # the database is away: the leases run out instead
                log.debug("workload %s: lease not released: %s", name, e)
        self.held.clear()

    def _stop_all(self) -> None:
        running = {n: h for n, h in self.held.items() if h.pid is not None and self._alive(h)}
        for held in running.values():
            assert held.pid is not None
            signal_group(held.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(self._alive(h) for h in running.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name, held in running.items():
            assert held.pid is not None
            signal_group(held.pid, signal.SIGKILL)
            held.process, held.pid = None, None
            try:
                self._write(name, held, state="stopped", pid=None, port=None, health=None)
            except Exception as e:  # the database is away: the next daemon sees it gone
                log.debug("workload %s: its stop was not recorded: %s", name, e)
        reap()

    # -- ownership -----------------------------------------------------------------------

    def _one(self, rec: WorkloadRecord) -> None:
        held = self.held.get(rec.name)
        mine = rec.name in self.workspace.workloads
        if held is None and not mine and rec.spec.get("workspace") != self.workspace.describe():
            return  # another workspace's (a daemon of its own supervises it)
        if held is not None and (rec.owner != self.owner or rec.token != held.token):
            log.warning("workload %s: another supervisor took it over", rec.name)
            self.held.pop(rec.name)
            return
        if held is None:
            held = self._claim(rec)
            if held is None:
                return
        elif self.clock() - held.renewed >= self.renew_every:
            if not self.store.renew(rec.name, self.owner, held.token, self.lease):
                self.held.pop(rec.name)
                return
            held.renewed = self.clock()
        workload = self.workspace.workloads.get(rec.name)
        if workload is None:
            if held.run_id is not None and held.ending is None:
                held.ending = (RunStatus.CANCELED, "stopped: its code no longer declares it")
            if self._stop(rec, held):
                self.store.remove(rec.name)
                self.held.pop(rec.name)
                log.info("workload %s: removed (no longer in the workspace)", rec.name)
        elif rec.desired == "stopped":
            held.finished, held.failures, held.next_start = False, 0, None
            self._stop(rec, held)
        else:
            self._run(rec, held, workload)
        if rec.name in self.held:
            self._rotate(rec, held)

    def _claim(self, rec: WorkloadRecord) -> Held | None:
        dead = None
        if rec.owner is not None:
            dead = rec.owner if self._owner_dead(rec.owner) else None
            expires = rec.lease_expires_at or 0.0
            if dead is None and expires > time.time() + 1.0:
                return None  # held by a live supervisor (the database's clock decides)
        token = self.store.claim(rec.name, self.owner, self.lease, take_from=dead)
        if token is None:
            return None
        held = Held(token=token, renewed=self.clock())
        self.held[rec.name] = held
        if rec.pid is not None and rec.host == self.host:
            proc = same_process(rec.pid, rec.pid_started)
            if proc is not None:
                held.process, held.pid, held.started = proc, rec.pid, rec.started_at
                held.run_id = rec.run_id if rec.kind == "interactive" else None
                held.replace = rec.name in self._changed
                log.info(
                    "workload %s: adopted pid %d%s",
                    rec.name,
                    rec.pid,
                    "; its code changed: restarting it" if held.replace else "",
                )
                return held
        if rec.pid is not None and rec.host not in (None, self.host):
            log.warning(
                "workload %s: its process %d on %s cannot be watched from here; starting another",
                rec.name,
                rec.pid,
                rec.host,
            )
        if rec.pid is not None or rec.state not in ("stopped", "crash_loop", "backoff"):
            self._write(rec.name, held, pid=None, port=None, state="stopped", health=None)
        return held

    def _owner_dead(self, owner: str) -> bool:
        """Whether ``owner`` (a daemon id, ``host:pid:...``) was a daemon of this host that
        is gone."""
        parts = owner.split(":")
        if len(parts) < 3 or parts[0] != self.host or not parts[1].isdigit():
            return False
        return not psutil.pid_exists(int(parts[1]))
