"""The run worker's supervisor: liveness that the run's own code cannot starve.

A run worker forks in two. The child executes the run; the parent, which
never runs user code, supervises it:

- it writes the run's heartbeat every ``HEARTBEAT_INTERVAL`` seconds with
  the run's fencing token, so a task holding the GIL (a long C call, a
  regex backtracking) does not make a healthy run look dead;
- when the database refuses the token (the run was judged dead while this
  machine was paused or cut off, or its start was handed to another
  worker), it kills the child's whole process group at once, so a run never
  goes on beside its successor, and records why;
- when it cannot reach the database for most of a run lease (on PostgreSQL),
  it stops the child before a daemon on another machine may judge the run
  dead, so that a partitioned machine does not run beside its successor;
- when the run is being canceled (``conveyor runs cancel``, a run timeout)
  and its child has not stopped within ``CANCEL_GRACE`` seconds (a step in
  the run's own process stops only between steps), it kills the child's
  process group and ends the run ``canceled``;
- when the child exits without ending the run (killed, crashed, ``os._exit``),
  it ends the run with the reason at once, after writing what the child left
  in its journal, and frees the run's slots; and it kills whatever the child
  left running in its process group.

The child is in a process group of its own and dies with the supervisor
(``PR_SET_PDEATHSIG`` on Linux); the supervisor's own death is seen by the
judge of dead runs (``scheduler.monitor``), which asks this host whether the
process recorded for the run is still there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable

from conveyor.errors import LeaseLostError
from conveyor.storage.instance import Instance
from conveyor.storage.runs import ENV_RUN_LEASE, RunStore, run_lease
from conveyor.storage.states import RunStatus

HEARTBEAT_INTERVAL = 1.0
# The share of the run lease after which a run that cannot heartbeat stops itself.
SELF_FENCE = 0.8
# How long a canceled run may take to stop by itself before its process group is killed.
CANCEL_GRACE = 2.0
# How long a child that has ended its run may take to exit before it is stopped.
EXIT_GRACE = 5.0
# How long the supervisor tries to end a run whose child died, while the database is away.
END_RETRY_FOR = 30.0
PR_SET_PDEATHSIG = 1

log = logging.getLogger("conveyor")


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), and exit at once
    if the parent is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def supervise(run_id: str, token: int, instance: Instance, child: Callable[[], int]) -> int:
    """Fork ``child`` (which executes start ``token`` of the run) and watch over it until it
    exits; returns the worker's exit code (0 if the run succeeded)."""
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setpgid(0, 0)
            die_with_parent(parent)
            # The pooled connections belong to the supervisor: the child opens its own.
            instance.db.engine.dispose(close=False)
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = child()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return _watch(run_id, token, instance, pid)


def _watch(run_id: str, token: int, instance: Instance, pid: int) -> int:
    store = instance.run_store

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pidfd = _pidfd(pid)
    status: int | None = None
    # A daemon on another machine may judge the run dead after a lease of silence; the
    # run stops itself before that, so that it never runs beside its successor. On
    # SQLite every judge is on this machine and asks the kernel instead.
    fence_after = None if instance.db.is_sqlite else SELF_FENCE * run_lease()
    last_beat = time.monotonic()
    canceling_since: float | None = None
    try:
        while True:
            status = _reaped(pid)
            if status is not None:
                break
            sent = time.monotonic()
            try:
                now = store.heartbeat(run_id, token)
                last_beat = sent
                if now is RunStatus.CANCELING:
                    canceling_since = canceling_since or sent
                    if sent - canceling_since > CANCEL_GRACE:
                        # A step that does not stop between steps (in-process, a task in
                        # one long call) is stopped here, with the run's whole group.
                        _kill_group(pid)
                        status = _wait(pid)
                        break
            except LeaseLostError as e:
                status = _exit_after_its_end(store, run_id, token, pid, pidfd)
                if status is not None:
                    break  # the child ended the run itself, and has exited
                _kill_group(pid)
                _wait(pid)
                _note_lost(instance, run_id, pid, str(e))
                return 1
            except Exception:
                # The database is away: the judges wait for it too, up to a lease.
                silent = time.monotonic() - last_beat
                if fence_after is not None and silent > fence_after:
                    _kill_group(pid)
                    _wait(pid)
                    log.error(
                        "run %s: stopped, with its process group: no heartbeat reached the "
                        "database for %.0fs, and a daemon elsewhere may judge it dead at %gs "
                        "(%s)",
                        run_id[:8],
                        silent,
                        run_lease(),
                        ENV_RUN_LEASE,
                    )
                    return 1
            _sleep_until_exit(pidfd, HEARTBEAT_INTERVAL)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    _kill_group(pid)  # whatever the run left behind in its group
    code = os.waitstatus_to_exitcode(status)
    if canceling_since is not None and code != 0:
        waited = time.monotonic() - canceling_since
        _end_if_open(
            instance,
            run_id,
            token,
            code,
            f"canceled: its process was stopped {waited:.0f}s "
            f"after the cancel, as its running step did not stop",
        )
    else:
        _end_if_open(instance, run_id, token, code)
    return 0 if code == 0 else 1


def _end_if_open(
    instance: Instance, run_id: str, token: int, code: int, why: str | None = None
) -> None:
    """End the run if its child exited without ending it (after applying its journal)."""
    if why is None and code < 0:
        why = f"its process was killed by {signal.Signals(-code).name}"
    elif why is None:
        why = f"its process exited with code {code} before the run ended"
    deadline = time.monotonic() + END_RETRY_FOR
    wait = 0.2
    while True:
        try:
            run = instance.run_store.get(run_id)
            if run.token != token or run.status.is_terminal:
                return
            if run.status in (RunStatus.RUNNING, RunStatus.CANCELING):
                status = instance.end_lost_run(run_id, why, token)
                log.warning("run %s %s: %s", run_id[:8], status, why)
            return
        except LeaseLostError:
            return
        except Exception as e:
            if time.monotonic() + wait > deadline:
                log.error(
                    "run %s: could not record its end (%s); a daemon will, once the database "
                    "is back",
                    run_id[:8],
                    e,
                )
                return
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


def _exit_after_its_end(
    store: RunStore, run_id: str, token: int, pid: int, pidfd: int | None
) -> int | None:
    """The child's wait status when a heartbeat was refused because the run has ended under
    this start (the child ended it, and is exiting) and the child exits within
    ``EXIT_GRACE``; None when the start was taken away, or the child does not exit."""
    try:
        run = store.get(run_id)
    except Exception:
        return None
    if run.token != token or not run.status.is_terminal:
        return None
    deadline = time.monotonic() + EXIT_GRACE
    while (status := _reaped(pid)) is None:
        if time.monotonic() >= deadline:
            return None
        _sleep_until_exit(pidfd, 0.1)
    return status


def _note_lost(instance: Instance, run_id: str, pid: int, why: str) -> None:
    message = f"{why}. Its process {pid} was stopped with its process group"
    log.error("%s", message)
    with contextlib.suppress(Exception):
        instance.event_store.add(run_id, "lease_lost", message)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _sleep_until_exit(pidfd: int | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if the child exits first (where the kernel can say so)."""
    if pidfd is None:
        time.sleep(seconds)
        return
    with contextlib.suppress(InterruptedError):
        select.select([pidfd], [], [], seconds)


def _reaped(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if done == pid else None


def _wait(pid: int) -> int:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
