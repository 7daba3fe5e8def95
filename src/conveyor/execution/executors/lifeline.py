"""Worker processes, and every process they start, die with the process that owns them.

Workers are children of the forkserver, not of the process that runs the run
(their owner), so the kernel does not tie them to it; and the forkserver
itself stays up while any worker holds its "alive" pipe. When the owner dies,
however it dies (SIGKILL included), these ties act, all set up once per worker
and none per task:

- Each worker leads its own process group, which the subprocesses of its tasks
  join, so they can be found after the worker is gone.
- A guard process, one per owner, in its own session and running no task code
  (so no task can starve it), waits for the owner's end of a pipe to close,
  then kills each worker's process tree and process group.
- On Linux each worker asks the kernel for SIGKILL when its parent, the
  forkserver, exits, and gives up its copy of the forkserver's "alive" pipe,
  so that the forkserver exits as soon as the owner does.
- A thread in each worker notices the owner's end of another pipe close and
  kills the worker's descendants, those that left its group too, then the
  worker: the quickest tie, when the task leaves it the GIL.

Only a process that leaves its worker's group and is orphaned before the
guard or the worker's thread looks (a daemon that double-forks and calls
``setsid``) can outlive the owner.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from types import FrameType

import psutil

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GUARD_STOP_WAIT = 2.0


class Lifeline:
    """The owner's side: the pipes only this process writes to, and the guard process."""

    def __init__(self, ctx: BaseContext) -> None:
        # Nobody writes to this pipe: workers wait for its end of file.
        self.reader, self._writer = ctx.Pipe(duplex=False)
        guard_end, self._to_guard = ctx.Pipe(duplex=False)
        # The death signal fires when the thread that forked the worker exits: the
        # forkserver's only thread lives as long as it; a thread of ours may not.
        self.death_signal = sys.platform.startswith("linux") and (
            ctx.get_start_method() == "forkserver"
        )
        self._lock = threading.Lock()
        self.guard: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=guard, args=(guard_end,), daemon=True, name="conveyor-guard"
        )
        self.guard.start()
        guard_end.close()

    def watch(self, pid: int) -> None:
        """Have the guard kill this worker's tree when the owner dies."""
        self._tell_guard(pid)

    def forget(self, pid: int) -> None:
        """A worker that ended: its pid may be reused by an unrelated process."""
        self._tell_guard(-pid)

    def _tell_guard(self, message: int) -> None:
        with self._lock:
            try:
                self._to_guard.send(message)
            except OSError:
                pass  # the guard is gone; the workers' own ties still hold

    def close(self) -> None:
        """Let go the way the owner's death would, and wait for the guard to finish."""
        self.abandon()
        self.guard.join(timeout=GUARD_STOP_WAIT)

    def abandon(self) -> None:
        """Close this process's copies of the owner's ends, without waiting."""
        for conn in (self._to_guard, self._writer, self.reader):
            try:
                conn.close()
            except OSError:
                pass


_lock = threading.Lock()
_current: Lifeline | None = None


def owned(ctx: BaseContext) -> Lifeline:
    """This process's lifeline, started on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Lifeline(ctx)
        return _current


def release() -> None:
    """Close this process's lifeline (at exit, after its workers were stopped)."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None:
        current.close()


def _forget_after_fork() -> None:
    # A forked child must not keep its parent's workers alive by holding the
    # parent's ends; no lock here, another thread may have held it at the fork.
    global _current
    current, _current = _current, None
    if current is not None:
        current.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def hold(owner: Connection, death_signal: bool) -> None:
    """In a new worker, before any task: tie this process to its owner."""
    os.setpgid(0, 0)
    if death_signal:
        parent = os.getppid()
        _ask_for_death_signal()
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # the parent died before we asked
    # After asking for the signal: our copy kept the forkserver up until now.
    _leave_forkserver()
    threading.Thread(target=_watch, args=(owner,), daemon=True, name="conveyor-lifeline").start()


def guard(owner: Connection) -> None:
    """The guard process: kill the watched workers' trees when the owner's end closes."""
    # Out of the owner's process group and session: a signal sent to the owner's
    # group (a terminal's Ctrl-C, a supervisor stopping it) must not reach the guard.
    os.setsid()
    _leave_forkserver()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    pids: set[int] = set()
    try:
        while True:
            try:
                message: int = owner.recv()
            except (EOFError, OSError):
                return
            if message > 0:
                pids.add(message)
            else:
                pids.discard(-message)
    finally:
        for pid in pids:
            kill_group_and_tree(pid)


def kill_group_and_tree(pid: int) -> None:
    """SIGKILL a process's descendants and the process group it leads, itself included."""
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for p in descendants:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # no such group left, or the id now names another user's group


def _watch(owner: Connection) -> None:
    try:
        owner.recv_bytes()
    except (EOFError, OSError):
        pass
    me = os.getpid()
    if os.getpgid(0) == me:
        kill_group_and_tree(me)
    os.kill(me, signal.SIGKILL)


def _ask_for_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    # On failure the guard and the watch thread still tie the worker to its owner.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _leave_forkserver() -> None:
    """Close this process's copy of the forkserver's "alive" pipe.

    Every process the forkserver starts inherits one, and the forkserver exits
    only when all copies are closed; without this it outlives the owner for as
    long as any worker lives. A process that uses the forkserver context itself
    starts its own forkserver, so nothing else reads this copy.
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None:
        return
    # setattr: the attribute is private, so the type stubs do not declare it.
    setattr(server, "_forkserver_alive_fd", None)  # noqa: B010
    try:
        os.close(fd)
    except OSError:
        pass


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
