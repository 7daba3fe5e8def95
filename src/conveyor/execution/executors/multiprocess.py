"""The multiprocess executor: steps run in a warm pool of worker processes.

Workers are started once and reused across tasks and runs (never a process
per task). Each worker is held by one executor object at a time, from the
moment a call is started on it until its report is back, so any number of
runs in one process share the pool at once.

A task whose worker dies fails with a ``WorkerLostError`` that says how it
died; a task past its timeout or over its memory has its whole
process tree stopped; the worker is replaced and the other tasks go on.
At most ``cpu`` cores' worth of tasks run at once (by each task's ``cpu=``).
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import wait as wait_for
from typing import TYPE_CHECKING, Any

from conveyor.errors import (
    ConveyorError,
    ExecutionError,
    TaskOutOfMemoryError,
    WorkerLostError,
)
from conveyor.execution.executors.base import StoredValue
from conveyor.execution.executors.processes import (
    Pool,
    WorkerProcess,
    describe_exit,
    kill_tree,
    shared_pool,
    tree_rss,
)
from conveyor.execution.executors.worker import Packer, loads_report
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunMeta, RunState
from conveyor.execution.steps import Report, StepSpec
from conveyor.storage.blobs import DirectoryBlobStore

if TYPE_CHECKING:
    from conveyor.execution.engine import Running, Wakeup

MEMORY_CHECK_INTERVAL = 0.05


class MultiprocessExecutor:
    """Run steps in a warm pool of worker processes.

    Args:
        max_workers: worker processes (default: the machine's cores).
        cpu: cores' worth of tasks at once, by each task's ``cpu=`` (default:
            ``max_workers``). A task asking for more fails at once.
    """

    name = "multiprocess"
    runs_here = False

    def __init__(self, max_workers: int | None = None, cpu: float | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self.cpu = float(cpu) if cpu is not None else float(self.max_workers)

    @property
    def pool(self) -> Pool:
        return shared_pool(self.max_workers)

    def run(self, state: RunState, plan: Plan | None) -> None:
        from conveyor.execution.engine import run_steps

        run_steps(state, plan, _PoolBackend(self.pool, state, self.cpu, owner=self))

    def close(self) -> None:
        """Stop this executor's workers and the pool's idle ones; other runs' go on."""
        self.pool.close(owner=self)

    def __repr__(self) -> str:
        return f"MultiprocessExecutor(max_workers={self.max_workers}, cpu={self.cpu:g})"


class _PoolBackend:
    stop_grace = 0.0
    stop_note = "was stopped with every process it started"

    def __init__(self, pool: Pool, state: RunState, cpu_budget: float, owner: object) -> None:
        self.pool = pool
        self.owner = owner
        # A worker held for the next call (``has_room``), and the workers of this run.
        self.reserved: WorkerProcess | None = None
        self.held: set[WorkerProcess] = set()
        self.state = state
        self.cpu_budget = cpu_budget
        self.by_handle: dict[object, WorkerProcess] = {}
        self.limits: dict[object, tuple[int, str]] = {}
        self.done: list[tuple[object, Report]] = []
        self.stop_errors: dict[object, ConveyorError] = {}
        self.last_memory_check = 0.0
        blobs = state.instance.blobs
        # Large outputs go to the result store from the worker, when workers can reach it
        # and sign them: the store is the home's folder, where the instance's key is.
        home = state.instance.home
        local = isinstance(blobs, DirectoryBlobStore) and blobs.root == home
        blob_root = str(home) if local else None
        self.packer = Packer(state.config.resources, blob_root)

    def refuse(self, spec: StepSpec) -> str | None:
        if spec.cpu > self.cpu_budget:
            return (
                f"task {spec.key!r} asks for cpu={spec.cpu:g} but this executor runs at "
                f"most {self.cpu_budget:g} cpu at once; lower the task's cpu or give the "
                f"executor more (MultiprocessExecutor(cpu=...))"
            )
        return None

    def has_room(self) -> bool:
        if self.done:
            return False  # report what ended before starting more
        if self.reserved is None:
            self.reserved = self.pool.acquire(self.owner)
        return self.reserved is not None

    def submit(self, spec: StepSpec, attempt: int, meta: RunMeta) -> object:
        worker = self.reserved or self.pool.acquire(self.owner)
        self.reserved = None
        assert worker is not None, "has_room() holds a worker before submit()"
        self.held.add(worker)
        handle = object()
        try:
            # No timeout inside: the pool stops the whole process tree at the deadline.
            data = self.packer.pack(spec, attempt, meta, timeout=None)
        except Exception as e:
            # Nothing was sent: the worker is as good as before.
            self.held.discard(worker)
            self.pool.release(worker)
            error = (
                e
                if isinstance(e, ConveyorError)
                else ExecutionError(
                    f"task {spec.key!r} could not be sent to a worker process: "
                    f"{type(e).__name__}: {e}"
                )
            )
            self.done.append((handle, Report(error=error, user_code=False)))
            return handle
        worker.handle = handle
        self.by_handle[handle] = worker
        if spec.memory is not None:
            self.limits[handle] = (spec.memory, spec.key)
        try:
            worker.conn.send_bytes(data)
        except Exception as e:
            self._finish_dead(
                handle,
                worker,
                ConveyorError(f"task {spec.key!r} could not be sent to a worker process: {e}"),
            )
        return handle

    def wait(
        self, timeout: float, running: dict[object, Running], wake: Wakeup
    ) -> list[tuple[object, Report]]:
        if self.done:
            done, self.done = self.done, []
            return done
        busy = [w for w in self.held if w.handle is not None]
        if not busy:
            wake.wait(timeout)
            return []
        if self.limits:
            timeout = min(timeout, MEMORY_CHECK_INTERVAL)
        waitables: list[Any] = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
        ready = set(wait_for([*waitables, wake.fileno()], timeout))
        if wake.fileno() in ready:
            wake.drain()
        for w in busy:
            handle = w.handle
            assert handle is not None
            if w.conn in ready:
                try:
                    data = w.conn.recv_bytes()
                except (EOFError, OSError):
                    self._finish_dead(handle, w, None)
                    continue
                self._finish(handle, w, loads_report(data))
            elif w.proc.sentinel in ready:
                self._finish_dead(handle, w, None)
        self._check_memory()
        done, self.done = self.done, []
        return done

    def stop(self, handle: object, error: ConveyorError) -> None:
        worker = self.by_handle.get(handle)
        if worker is None:
            return
        self.stop_errors[handle] = error
        kill_tree(worker.pid)
        self._finish_dead(handle, worker, error)

    def load(self, value: StoredValue) -> Any:
        return self.state.instance.result_store.load(value.pointer)

    def close(self) -> None:
        """The run is over: its workers go back to the pool (stopped ones were replaced)."""
        if self.reserved is not None:
            self.pool.release(self.reserved)
            self.reserved = None
        for handle, worker in list(self.by_handle.items()):
            # Still running a call at the run's end (the run was stopped): not reusable.
            kill_tree(worker.pid)
            self._finish_dead(handle, worker, ConveyorError("stopped with the run"))
        self.held.clear()
        self.done.clear()

    def _finish(self, handle: object, worker: WorkerProcess, report: Report) -> None:
        self.by_handle.pop(handle, None)
        self.limits.pop(handle, None)
        self.held.discard(worker)
        self.pool.release(worker)
        self.done.append((handle, report))

    def _finish_dead(
        self, handle: object, worker: WorkerProcess, error: ConveyorError | None
    ) -> None:
        if handle not in self.by_handle:
            return
        if error is None:
            worker.proc.join(timeout=1)
            error = WorkerLostError(
                f"the worker process running this task (pid {worker.pid}) died: "
                f"{describe_exit(worker.proc.exitcode)}"
            )
        self.by_handle.pop(handle, None)
        self.limits.pop(handle, None)
        self.held.discard(worker)
        self.pool.replace(worker)
        self.done.append((handle, Report(error=error, user_code=False)))

    def _check_memory(self) -> None:
        now = time.monotonic()
        if not self.limits or now - self.last_memory_check < MEMORY_CHECK_INTERVAL:
            return
        self.last_memory_check = now
        for handle, (limit, key) in list(self.limits.items()):
            worker = self.by_handle.get(handle)
            if worker is None:
                continue
            used = tree_rss(worker.pid)
            if used > limit:
                self.stop(
                    handle,
                    TaskOutOfMemoryError(
                        f"task {key!r} used {used / 1e6:.0f} MB, more than its memory="
                        f"{limit / 1e6:.0f} MB, and was stopped"
                    ),
                )
