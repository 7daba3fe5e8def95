"""Worker processes: starting them warm, stopping whole process trees, reading memory use.

Workers die with the process that owns them; ``lifeline`` says how.

Workers never import the parent's ``__main__``. multiprocessing would run the
user's script again in each new process (as ``__mp_main__``), which works
only under ``if __name__ == "__main__":``: without the guard each worker
would start the user's run again. Tasks from ``__main__`` travel by value
instead (``worker.function_ref``), so scripts, notebooks and REPL sessions
need no guard.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import signal
import sys
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import psutil

from conveyor.execution.executors import lifeline

STOP_GRACE = 1.0

# Processes whose names start so do not import the parent's __main__: ours,
# and the ones named by ``keep_main_out``.
MAIN_FREE_PREFIX = "conveyor-"

_context_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None
_main_free_names: set[str] = set()


def context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (fast, and safe with the run's threads), else spawn."""
    global _context
    with _context_lock:
        if _context is None:
            _leave_main_out()
            if sys.platform.startswith("linux"):
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(
                    [
                        "conveyor.execution.executors.worker",
                        "conveyor.execution.executors.processes",
                    ]
                )
                _context = ctx
            else:
                _context = multiprocessing.get_context("spawn")
        return _context


def keep_main_out(name: str) -> None:
    """Processes named ``name`` (started by any library) do not import ``__main__``.

    For the processes of a library that ship functions by value themselves,
    such as Dask's workers started by a nanny.
    """
    with _context_lock:
        _main_free_names.add(name)
        _leave_main_out()


def _leave_main_out() -> None:
    """Take the parent's ``__main__`` out of the data that main-free processes start from.

    multiprocessing sends each new process this data before anything of ours
    runs in it (under spawn and forkserver alike), and the process imports
    the main module it names. Other processes' data is left as it is.
    """
    from multiprocessing import spawn

    original = spawn.get_preparation_data
    if getattr(original, "conveyor_main_free", False):
        return

    def get_preparation_data(name: str) -> dict[str, object]:
        data: dict[str, object] = original(name)
        if name.startswith(MAIN_FREE_PREFIX) or name in _main_free_names:
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
        return data

    # setattr: a marker on the function, which the type stubs do not declare.
    setattr(get_preparation_data, "conveyor_main_free", True)  # noqa: B010
    spawn.get_preparation_data = get_preparation_data


class WorkerProcess:
    """One warm worker and the pipe to it."""

    __slots__ = ("conn", "handle", "lifeline", "owner", "proc")

    def __init__(self) -> None:
        ctx = context()
        self.lifeline = lifeline.owned(ctx)
        parent, child = ctx.Pipe(duplex=True)
        self.proc: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(child, self.lifeline.reader, self.lifeline.death_signal),
            daemon=True,
            name="conveyor-worker",
        )
        self.proc.start()
        child.close()
        self.lifeline.watch(self.pid)
        self.conn: Connection = parent
        # The call it runs, and who holds it (an executor object): set and cleared
        # under the pool's lock, so that no two runs ever share a worker.
        self.handle: object | None = None
        self.owner: object | None = None

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            kill_tree(self.pid)
        self.ended()

    def ended(self) -> None:
        """The worker was stopped: the guard stops watching its pid, which may be reused."""
        self.lifeline.forget(self.pid)


def _serve(conn: Connection, owner: Connection, death_signal: bool) -> None:
    """A worker process's life: tied to its owner first, then serving calls."""
    from conveyor.execution.executors import worker

    lifeline.hold(owner, death_signal)
    worker.main(conn)


def kill_tree(pid: int, grace: float = STOP_GRACE) -> None:
    """Stop a process and every process below it: SIGTERM, ``grace`` seconds, then SIGKILL."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants, in bytes (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def describe_exit(code: int | None) -> str:
    """Why a worker process ended, in words."""
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGKILL": " (killed from outside, or by the kernel's out-of-memory killer)",
            "SIGSEGV": " (a segmentation fault in native code)",
            "SIGABRT": " (aborted by native code)",
        }.get(name, "")
        return f"it was killed by {name}{hint}"
    return f"it exited with code {code} (os._exit, or native code ending the process)"


class Pool:
    """Warm worker processes, reused across tasks and runs of this process.

    A worker is held by one owner (an executor object) from ``acquire`` to
    ``release``; any number of owners and runs share the pool at once, and an
    owner's ``close`` stops its own workers and the idle ones, never a worker
    another owner holds.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.workers: list[WorkerProcess] = []
        self._lock = threading.Lock()

    def acquire(self, owner: object) -> WorkerProcess | None:
        """A free worker, now held by ``owner``; ``None`` if all ``size`` are held."""
        with self._lock:
            for w in self.workers:
                if w.owner is None and w.proc.is_alive():
                    w.owner = owner
                    return w
            if len(self.workers) >= self.size:
                return None
            w = WorkerProcess()
            w.owner = owner
            self.workers.append(w)
            return w

    def release(self, worker: WorkerProcess) -> None:
        """The worker's owner is done with it: another may take it."""
        with self._lock:
            worker.handle = None
            worker.owner = None

    def replace(self, dead: WorkerProcess) -> None:
        """Drop a worker that died or was stopped; a new one starts when needed."""
        with self._lock:
            if dead in self.workers:
                self.workers.remove(dead)
            dead.handle = None
            dead.owner = None
        try:
            dead.conn.close()
        except OSError:
            pass
        dead.proc.join(timeout=1)
        dead.ended()

    def close(self, owner: object | None = None) -> None:
        """Stop the idle workers and those ``owner`` holds (every worker if ``owner`` is None)."""
        with self._lock:
            mine = [w for w in self.workers if owner is None or w.owner is None or w.owner is owner]
            self.workers = [w for w in self.workers if w not in mine]
        for w in mine:
            w.close()


_pools: dict[int, Pool] = {}
_pools_lock = threading.Lock()


def shared_pool(size: int) -> Pool:
    """The process-wide pool of ``size`` workers, started on first use."""
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = Pool(size)
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for p in pools:
        p.close()
    lifeline.release()
