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
from dataclasses import dataclass, field
from typing import Any

import psutil

from conveyor.definitions.workloads import Workload
from conveyor.execution.workload_launch import (
    Started,
    log_path,
    reap,
    rotate,
    same_process,
    signal_group,
    start_workload,
    started_at,
    tree_rss,
)
from conveyor.scheduler.workload_checks import HealthCheck, code_digest, ended, start_check
from conveyor.storage.instance import Instance
from conveyor.storage.workloads import WORKLOAD_LEASE, WorkloadRecord
from conveyor.workspace import Workspace

log = logging.getLogger("conveyor.supervisor")

# How often the supervisor looks at its workloads (seconds; the daemon passes faster).
EVERY = 0.5
RENEW_EVERY = 3.0
HEALTH_EVERY = 2.0
# Failed health checks in a row that restart a workload (once it has been healthy or
# its start grace is over).
HEALTH_FAILURES = 3
START_GRACE = 30.0
MEMORY_EVERY = 1.0
ROTATE_EVERY = 10.0
STOP_GRACE = 10.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
CRASH_LOOP_AFTER = 5
# Running this long without failing clears the count of failures in a row.
STABLE = 30.0


@dataclass(slots=True)
class _Held:
    """What this supervisor knows of a workload it holds, beyond the record."""

    token: int
    renewed: float
    process: Any = None  # subprocess.Popen when started here, psutil.Process when adopted
    pid: int | None = None
    started: float | None = None
    failures: int = 0  # in a row
    next_start: float | None = None
    finished: bool = False  # exited, and its restart policy says not to start it again
    stopping_since: float | None = None
    kill_reason: str | None = None
    replace: bool = False  # adopted with old code: stop it, then start the new
    check: HealthCheck | None = None
    checked: float = float("-inf")
    health_failures: int = 0
    measured: float = float("-inf")
    rotated: float = float("-inf")
    written: dict[str, Any] = field(default_factory=dict)


class Supervisor:
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
        self.held: dict[str, _Held] = {}
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
            self.store.register(w.name, w.kind, spec)
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

    def _claim(self, rec: WorkloadRecord) -> _Held | None:
        dead = None
        if rec.owner is not None:
            dead = rec.owner if self._owner_dead(rec.owner) else None
            expires = rec.lease_expires_at or 0.0
            if dead is None and expires > time.time() + 1.0:
                return None  # held by a live supervisor (the database's clock decides)
        token = self.store.claim(rec.name, self.owner, self.lease, take_from=dead)
        if token is None:
            return None
        held = _Held(token=token, renewed=self.clock())
        self.held[rec.name] = held
        if rec.pid is not None and rec.host == self.host:
            proc = same_process(rec.pid, rec.pid_started)
            if proc is not None:
                held.process, held.pid, held.started = proc, rec.pid, rec.started_at
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

    def _write(self, name: str, held: _Held, **fields: Any) -> bool:
        """Write what changed since the last write (fenced by the lease); False if the
        lease is lost (the workload is then no longer held)."""
        changed = {k: v for k, v in fields.items() if held.written.get(k, object()) != v}
        if not changed:
            return True
        if self.store.update(name, held.token, **changed):
            held.written.update(changed)
            return True
        self.held.pop(name, None)
        return False

    # -- the process ---------------------------------------------------------------------

    def _alive(self, held: _Held) -> bool:
        p = held.process
        if p is None:
            return False
        if isinstance(p, psutil.Process):
            try:
                return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
            except psutil.NoSuchProcess:
                return False
        return bool(p.poll() is None)

    def _exit_code(self, held: _Held) -> int | None:
        p = held.process
        return None if p is None or isinstance(p, psutil.Process) else p.returncode

    def _stop(self, rec: WorkloadRecord, held: _Held) -> bool:
        """Stop the workload's process group (SIGTERM, then SIGKILL after the grace);
        True once it is stopped."""
        if held.pid is not None and self._alive(held):
            now = self.clock()
            if held.stopping_since is None:
                held.stopping_since = now
                signal_group(held.pid, signal.SIGTERM)
                self._write(rec.name, held, state="stopping")
            elif now - held.stopping_since >= STOP_GRACE:
                signal_group(held.pid, signal.SIGKILL)
            return False
        if held.pid is not None:
            signal_group(held.pid, signal.SIGKILL)  # what it left behind in its group
        held.process, held.pid, held.stopping_since, held.check = None, None, None, None
        self._write(
            rec.name, held, state="stopped", pid=None, port=None, health=None, next_start_at=None
        )
        return True

    def _run(self, rec: WorkloadRecord, held: _Held, workload: Workload) -> None:
        if held.replace:
            if not self._stop(rec, held):
                return
            held.replace = False
        if held.pid is not None and self._alive(held):
            self._watch(rec, held, workload)
            return
        if held.pid is not None:
            self._exited(rec, held, workload)
        if held.finished:
            return
        if held.next_start is None or time.time() >= held.next_start:
            self._start(rec, held, workload)

    def _start(self, rec: WorkloadRecord, held: _Held, workload: Workload) -> None:
        try:
            started: Started = start_workload(workload, self.workspace.origin, self.instance.home)
        except Exception as e:
            log.error("workload %s: cannot start: %s", rec.name, e)
            self._failed(rec, held, f"cannot start: {e}", None)
            return
        held.process, held.pid = started.process, started.pid
        held.started, held.next_start, held.kill_reason = time.time(), None, None
        held.check, held.checked, held.health_failures = None, float("-inf"), 0
        restarts = rec.restarts + (1 if held.failures else 0)
        recorded = self._write(
            rec.name,
            held,
            state="starting",
            host=self.host,
            pid=started.pid,
            pid_started=started_at(started.pid),
            port=started.port,
            started_at=held.started,
            restarts=restarts,
            next_start_at=None,
            health=None,
        )
        if not recorded:  # another supervisor took it over meanwhile: it starts its own
            signal_group(started.pid, signal.SIGKILL)
            return
        log.info("workload %s: started pid %d on port %d", rec.name, started.pid, started.port)

    def _exited(self, rec: WorkloadRecord, held: _Held, workload: Workload) -> None:
        code = self._exit_code(held)
        if held.pid is not None:
            signal_group(held.pid, signal.SIGKILL)  # what it left behind in its group
        held.process, held.pid, held.check = None, None, None
        reason = held.kill_reason or ended(code)
        stopped_cleanly = held.kill_reason is None and code == 0
        if workload.restart == "never" or (workload.restart == "on-failure" and stopped_cleanly):
            held.finished = True
            log.info("workload %s: %s; restart=%r", rec.name, reason, workload.restart)
            self._write(
                rec.name,
                held,
                state="stopped",
                pid=None,
                port=None,
                health=None,
                last_exit_code=code,
                last_error=f"{reason}; not restarted (restart={workload.restart!r})",
            )
            return
        self._failed(rec, held, reason, code)

    def _failed(self, rec: WorkloadRecord, held: _Held, reason: str, code: int | None) -> None:
        if held.started is not None and time.time() - held.started >= STABLE:
            held.failures = 0
        held.failures += 1
        looping = held.failures >= CRASH_LOOP_AFTER
        # A crash loop retries at the cap at once: each start costs an interpreter's
        # start-up, and the loop must stay cheap (a few percent of a core).
        delay = (
            BACKOFF_CAP if looping else min(BACKOFF_BASE * 2 ** (held.failures - 1), BACKOFF_CAP)
        )
        held.next_start = time.time() + delay
        state = "crash_loop" if looping else "backoff"
        log.warning(
            "workload %s: %s; restarting in %gs (%s)",
            rec.name,
            reason,
            delay,
            state.replace("_", " "),
        )
        self._write(
            rec.name,
            held,
            state=state,
            pid=None,
            port=None,
            health=None,
            last_exit_code=code,
            last_error=reason,
            next_start_at=held.next_start,
        )

    # -- watching ------------------------------------------------------------------------

    def _watch(self, rec: WorkloadRecord, held: _Held, workload: Workload) -> None:
        now = self.clock()
        assert held.pid is not None
        if workload.memory_bytes is not None and now - held.measured >= MEMORY_EVERY:
            held.measured = now
            proc = held.process if isinstance(held.process, psutil.Process) else None
            try:
                proc = proc or psutil.Process(held.pid)
            except psutil.NoSuchProcess:
                return
            rss = tree_rss(proc)
            if rss > workload.memory_bytes:
                held.kill_reason = (
                    f"killed: memory {rss / 2**20:.0f} MiB over its limit "
                    f"{workload.memory_bytes / 2**20:.0f} MiB (memory={workload.memory!r})"
                )
                log.warning("workload %s: %s", rec.name, held.kill_reason)
                signal_group(held.pid, signal.SIGKILL)
                return
        if held.started is not None and time.time() - held.started >= STABLE:
            held.failures = 0
        port = rec.port if held.written.get("port") is None else held.written["port"]
        if port is None:
            return
        if held.check is not None and not held.check.thread.is_alive():
            ok, detail = held.check.ok, held.check.detail
            held.check = None
            self._health(rec, held, workload, bool(ok), detail)
        # Checked on each look while it starts (it is "running" as soon as it answers),
        # then every HEALTH_EVERY seconds.
        starting = held.written.get("state", rec.state) == "starting"
        if held.check is None and now - held.checked >= (EVERY if starting else HEALTH_EVERY):
            held.checked = now
            held.check = start_check(int(port), workload.health)

    def _health(
        self, rec: WorkloadRecord, held: _Held, workload: Workload, ok: bool, detail: str
    ) -> None:
        if ok:
            held.health_failures = 0
            self._write(rec.name, held, state="running", health="ok" if workload.health else None)
            return
        held.health_failures += 1
        starting = held.written.get("state", rec.state) == "starting"
        in_grace = held.started is not None and time.time() - held.started < START_GRACE
        if starting and in_grace:
            return
        if not workload.health:
            self._write(rec.name, held, state="unhealthy", health=f"not answering: {detail}")
            return
        self._write(rec.name, held, state="unhealthy", health=f"failing: {detail}")
        if held.health_failures >= HEALTH_FAILURES and held.pid is not None:
            held.kill_reason = (
                f"killed: health check {workload.health} failed {held.health_failures} "
                f"times ({detail})"
            )
            log.warning("workload %s: %s", rec.name, held.kill_reason)
            signal_group(held.pid, signal.SIGKILL)

    def _rotate(self, rec: WorkloadRecord, held: _Held) -> None:
        now = self.clock()
        if now - held.rotated < ROTATE_EVERY:
            return
        held.rotated = now
        for stream in ("stdout", "stderr"):
            try:
                rotate(log_path(self.instance.home, rec.name, stream))
            except OSError as e:
                log.warning("workload %s: its %s log was not rotated: %s", rec.name, stream, e)
