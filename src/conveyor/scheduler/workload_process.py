"""How the supervisor runs one workload's process: start it, watch it (exit, health
path, memory, an interactive job's idle and execute timeouts), restart it with
exponential backoff, stop it (SIGTERM, a grace period, SIGKILL), rotate its logs.

``WorkloadProcesses`` holds that part of ``scheduler.supervisor.Supervisor``,
which adds who owns each workload (the lease) and the pass over all of them.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from conveyor.definitions.interactive import Interactive
from conveyor.definitions.workloads import Workload
from conveyor.execution.workload_launch import (
    Started,
    log_path,
    rotate,
    signal_group,
    start_workload,
    started_at,
    tree_rss,
)
from conveyor.scheduler import interactive_runs
from conveyor.scheduler.workload_checks import HealthCheck, ended, start_check
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.storage.workloads import WorkloadRecord, WorkloadStore
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
class Held:
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
    # An interactive job's: the run this start is, how it is to end, when it was last asked.
    run_id: str | None = None
    ending: tuple[RunStatus, str | None] | None = None
    run_checked: float = float("-inf")
    serving_since: float | None = None  # when it first answered, this start


class WorkloadProcesses:
    """Starting, watching and stopping the processes of the workloads this supervisor
    holds (``held``); every write is fenced by the workload's lease (``_write``)."""

    workspace: Workspace
    instance: Instance
    store: WorkloadStore
    host: str
    renew_every: float
    clock: Callable[[], float]
    held: dict[str, Held]

    def _write(self, name: str, held: Held, **fields: Any) -> bool:
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

    def _alive(self, held: Held) -> bool:
        p = held.process
        if p is None:
            return False
        if isinstance(p, psutil.Process):
            try:
                return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
            except psutil.NoSuchProcess:
                return False
        return bool(p.poll() is None)

    def _exit_code(self, held: Held) -> int | None:
        p = held.process
        return None if p is None or isinstance(p, psutil.Process) else p.returncode

    def _stop(self, rec: WorkloadRecord, held: Held) -> bool:
        """Stop the workload's process group (SIGTERM, then SIGKILL after the grace);
        True once it is stopped."""
        if held.pid is not None and self._alive(held):
            now = self.clock()
            if held.stopping_since is None:
                held.stopping_since = now
                if held.run_id is not None:
                    interactive_runs.stopping(self.instance, held.run_id)
                signal_group(held.pid, signal.SIGTERM)
                self._write(rec.name, held, state="stopping")
            elif now - held.stopping_since >= STOP_GRACE:
                signal_group(held.pid, signal.SIGKILL)
            return False
        was_running = held.pid is not None
        if held.pid is not None:
            signal_group(held.pid, signal.SIGKILL)  # what it left behind in its group
        held.process, held.pid, held.stopping_since, held.check = None, None, None, None
        # An interactive job stopped for idleness says so until it starts again.
        idle = held.ending is not None and held.ending[0] is RunStatus.SUCCESS
        idle = idle or (not was_running and rec.state == "idle")
        if held.run_id is not None:
            self._end_run(rec, held, RunStatus.CANCELED, "stopped on request")
            held.written.pop("last_request_at", None)
            self._write(rec.name, held, last_request_at=None)
        self._write(
            rec.name,
            held,
            state="idle" if idle else "stopped",
            pid=None,
            port=None,
            health=None,
            next_start_at=None,
        )
        return True

    def _end_run(
        self, rec: WorkloadRecord, held: Held, status: RunStatus, error: str | None
    ) -> None:
        """End the run of an interactive job's start (as ``held.ending`` says, if it says)."""
        if held.run_id is None:
            return
        status, error = held.ending or (status, error)
        run_id, held.run_id, held.ending = held.run_id, None, None
        try:
            interactive_runs.end_run(self.instance, run_id, status, error)
        except Exception:
            log.exception("workload %s: its run %s was not ended", rec.name, run_id)

    def _run(self, rec: WorkloadRecord, held: Held, workload: Workload) -> None:
        if held.replace:
            if held.run_id is not None and held.ending is None:
                held.ending = (RunStatus.CANCELED, "stopped: its code changed")
            if not self._stop(rec, held):
                return
            held.replace = False
        if held.pid is not None and self._alive(held):
            self._watch(rec, held, workload)
            return
        if held.pid is not None:
            self._exited(rec, held, workload)
            if isinstance(workload, Interactive):
                return  # it starts again when it is asked to (the next pass reads that)
        if held.finished:
            return
        if held.next_start is None or time.time() >= held.next_start:
            self._start(rec, held, workload)

    def _start(self, rec: WorkloadRecord, held: Held, workload: Workload) -> None:
        env: dict[str, str] = {}
        output = None
        if isinstance(workload, Interactive):
            # A request wrote its time before asking for the start; a person did not.
            trigger = "request" if rec.last_request_at is not None else "manual"
            held.run_id = interactive_runs.open_run(
                self.instance,
                workload,
                self.workspace.origin,
                trigger=trigger,
                version=rec.spec.get("code"),
            )
            env["CONVEYOR_RUN_ID"] = held.run_id
            output = interactive_runs.output_files(self.instance, held.run_id)
        try:
            started: Started = start_workload(
                workload, self.workspace.origin, self.instance.home, env=env, output=output
            )
            if held.run_id is not None:
                interactive_runs.began(self.instance, held.run_id, started.pid)
        except Exception as e:
            log.error("workload %s: cannot start: %s", rec.name, e)
            if isinstance(workload, Interactive):
                self._interactive_ended(rec, held, RunStatus.FAILURE, f"cannot start: {e}", None)
                return
            self._failed(rec, held, f"cannot start: {e}", None)
            return
        held.process, held.pid = started.process, started.pid
        held.started, held.next_start, held.kill_reason = time.time(), None, None
        held.serving_since = None
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
            run_id=held.run_id or rec.run_id,
        )
        if not recorded:  # another supervisor took it over meanwhile: it starts its own
            signal_group(started.pid, signal.SIGKILL)
            return
        log.info("workload %s: started pid %d on port %d", rec.name, started.pid, started.port)

    def _exited(self, rec: WorkloadRecord, held: Held, workload: Workload) -> None:
        code = self._exit_code(held)
        if held.pid is not None:
            signal_group(held.pid, signal.SIGKILL)  # what it left behind in its group
        held.process, held.pid, held.check, held.stopping_since = None, None, None, None
        reason = held.kill_reason or ended(code)
        stopped_cleanly = held.kill_reason is None and code == 0
        if isinstance(workload, Interactive):
            status = RunStatus.SUCCESS if stopped_cleanly else RunStatus.FAILURE
            self._interactive_ended(rec, held, status, None if stopped_cleanly else reason, code)
            return
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

    def _failed(self, rec: WorkloadRecord, held: Held, reason: str, code: int | None) -> None:
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

    def _watch(self, rec: WorkloadRecord, held: Held, workload: Workload) -> None:
        now = self.clock()
        assert held.pid is not None
        if isinstance(workload, Interactive) and self._interactive_done(rec, held, workload):
            return
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

    def _interactive_done(self, rec: WorkloadRecord, held: Held, workload: Interactive) -> bool:
        """Whether an interactive job is to stop now: idle past its timeout, past its
        execute timeout, or its run canceled. It is asked to stop (its run ends as
        ``held.ending`` says once its process is gone)."""
        wall = time.time()
        started = held.started or wall
        # Idle time counts once it serves: a slow start is not idleness.
        if workload.idle_seconds is not None and held.serving_since is not None:
            last = max(rec.last_request_at or 0.0, held.serving_since)
            if wall - last >= workload.idle_seconds:
                held.ending = (RunStatus.SUCCESS, None)
                log.info("workload %s: idle for %.0fs: stopping it", rec.name, wall - last)
        timeout = workload.timeout_seconds
        if held.ending is None and timeout is not None and wall - started >= timeout:
            held.ending = (
                RunStatus.FAILURE,
                f"stopped: it ran past its execute timeout of {timeout:g}s",
            )
        due = self.clock() - held.run_checked >= self.renew_every
        if held.ending is None and held.run_id is not None and due:
            held.run_checked = self.clock()
            status = interactive_runs.status_of(self.instance, held.run_id)
            if status is RunStatus.CANCELING:
                held.ending = (RunStatus.CANCELED, "canceled on request")
        if held.ending is None:
            return False
        self.store.set_desired(rec.name, "stopped")
        self._stop(rec, held)
        return True

    def _interactive_ended(
        self,
        rec: WorkloadRecord,
        held: Held,
        status: RunStatus,
        error: str | None,
        code: int | None,
    ) -> None:
        """An interactive job's process ended (or never started): its run ends, and it
        waits, stopped, for its next request."""
        idle = held.ending is not None and held.ending[0] is RunStatus.SUCCESS
        # Stopped on purpose, and asked for again meanwhile: it starts anew on the next pass.
        asked_again = held.ending is not None and rec.desired == "running"
        self._end_run(rec, held, status, error)
        if not asked_again:
            self.store.set_desired(rec.name, "stopped")
        held.written.pop("last_request_at", None)
        self._write(
            rec.name,
            held,
            state="idle" if idle else "stopped",
            pid=None,
            port=None,
            health=None,
            last_exit_code=code,
            last_error=error,
            last_request_at=None,
        )

    def _health(
        self, rec: WorkloadRecord, held: Held, workload: Workload, ok: bool, detail: str
    ) -> None:
        if ok:
            held.health_failures = 0
            if held.serving_since is None:
                held.serving_since = time.time()
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

    def _rotate(self, rec: WorkloadRecord, held: Held) -> None:
        now = self.clock()
        if now - held.rotated < ROTATE_EVERY:
            return
        held.rotated = now
        for stream in ("stdout", "stderr"):
            try:
                rotate(log_path(self.instance.home, rec.name, stream))
            except OSError as e:
                log.warning("workload %s: its %s log was not rotated: %s", rec.name, stream, e)
