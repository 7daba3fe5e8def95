"""The Dask executor: steps run as tasks on a ``dask.distributed`` cluster.

Needs ``pip install 'conveyor[dask]'``. With no address it starts a
``LocalCluster`` (kept for the executor's life); with an address it joins an
existing cluster. A task's ``cpu`` and ``memory`` become Dask worker
resources ``cpu`` and ``memory`` (bytes) when the workers declare them
(``dask worker ADDRESS --resources "cpu=2,memory=8e9"``), so a task runs
only where they fit; a task that fits no worker fails at once.

A job's ``require={"machine": {"cpu": 2, "memory": "4GiB"}}`` is the cpu and
memory each of its tasks asks for when the task sets none of its own, and
then the workers must declare ``cpu``/``memory``: a job that requires a
machine does not run where that cannot be checked. ``require={"region":
"eu"}`` runs its tasks only on workers that declare the resource
``region-eu`` (``--resources "region-eu=1"``; only its presence counts, so it
limits where tasks run, not how many). A requirement no worker meets fails
the task at once with the reason, and an executor made with a
``LocalCluster``'s ``resources=`` refuses the job when it is defined
(``unmet``).

Retries, logs and results work as on the other executors: the run's process
records everything; workers return each call's output and captured logs.
The run's process stores (and signs) the outputs, so workers need neither the
instance's blob store nor its key, and may each have a home of their own.
Workers of the ``LocalCluster`` also write each line to the task's live log
file, so a task stopped at its timeout, canceled, or whose worker died keeps
the lines it wrote; on a remote cluster those lines are lost with the worker
(its output comes back only with the call's result).
A Dask worker runs tasks in threads that nothing may interrupt, so at a
task's timeout the run gives up on it (the attempt fails with
``TaskTimeoutError`` and its Dask future is cancelled) while the worker's
thread runs the function to its end; for a hard stop use the multiprocess
executor.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, ConveyorError, ExecutionError, WorkerLostError
from conveyor.execution.executors.base import StoredValue
from conveyor.execution.executors.worker import Packer, loads_report, run_bytes
from conveyor.execution.plan import Plan
from conveyor.execution.state import RunMeta, RunState
from conveyor.execution.steps import Report, StepSpec

if TYPE_CHECKING:
    from conveyor.execution.engine import Running, Wakeup

ADDRESS_ENV = "CONVEYOR_DASK_ADDRESS"
_clients: list[Any] = []
_clients_lock = threading.Lock()


class DaskExecutor:
    """Run steps on a Dask cluster.

    Args:
        address: the scheduler's address (``tcp://host:8786``); default: the
            ``CONVEYOR_DASK_ADDRESS`` environment variable, and without it a new
            ``LocalCluster`` with ``cluster_options``.
        cluster_options: passed to ``LocalCluster`` (``n_workers``,
            ``threads_per_worker``, ``resources``...).
    """

    name = "dask"
    runs_here = False

    def __init__(self, address: str | None = None, **cluster_options: Any) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the Dask executor needs dask.distributed: pip install 'conveyor[dask]'"
            ) from None
        if address is None and not cluster_options:
            address = os.environ.get(ADDRESS_ENV) or None
        self.address = address
        self.cluster_options = cluster_options
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from distributed import Client, LocalCluster

                if self.address is None:
                    import dask

                    from conveyor.execution.executors.processes import keep_main_out

                    # Steps travel by value where needed; a worker importing the
                    # user's unguarded script would start the user's run again.
                    keep_main_out("Dask Worker process (from Nanny)")

                    options = {"processes": True, "dashboard_address": ":0", **self.cluster_options}
                    # Conveyor retries by the task's RetryPolicy; Dask re-running a task that
                    # killed its worker on three more workers would only delay the failure.
                    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                        self._cluster = LocalCluster(**options)
                    self._client = Client(self._cluster)
                else:
                    self._client = Client(self.address)
                with _clients_lock:
                    _clients.append(self)
            return self._client

    def run(self, state: RunState, plan: Plan | None) -> None:
        from conveyor.execution.engine import run_steps

        client = self.client
        run_steps(state, plan, _DaskBackend(client, state, local=self._cluster is not None))

    def unmet(self, require: Mapping[str, Any]) -> str | None:
        """Why a job's ``require`` (its ``machine`` and ``region``) cannot be met on the
        workers this executor starts, or ``None``: checked when the job is defined, and
        only where the workers are known before they start (a ``LocalCluster`` given
        ``resources=``); a cluster joined by address is checked when the job runs."""
        declared = self.cluster_options.get("resources")
        if self.address is not None or not isinstance(declared, Mapping):
            return None
        return unmet_on([dict(declared)], dict(require.get("machine") or {}), require.get("region"))

    def close(self) -> None:
        with self._lock:
            client, cluster = self._client, self._cluster
            self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        return f"DaskExecutor(address={self.address!r})"


@atexit.register
def _close_clients() -> None:
    with _clients_lock:
        executors = list(_clients)
        _clients.clear()
    for executor in executors:
        executor.close()


class _DaskBackend:
    stop_grace = 0.0
    stop_note = "was abandoned; its Dask worker thread runs the function to its end"

    def __init__(self, client: Any, state: RunState, *, local: bool) -> None:
        self.client = client
        self.state = state
        # Workers of a LocalCluster share this machine, so they write the tasks' live log
        # files where the run reads them; a remote cluster's workers return output only.
        self.local = local
        workers = client.scheduler_info()["workers"]
        self.resources = [w.get("resources", {}) for w in workers.values()]
        threads = sum(w.get("nthreads", 1) for w in workers.values()) or 1
        # The job's require= (job_require): its machine, and the workers of its region.
        require = getattr(state.job, "require", None) or {}
        self.machine: dict[str, float] = dict(require.get("machine") or {})
        self.region: str | None = require.get("region")
        self.region_workers: list[str] | None = None
        if self.region is not None:
            name = region_resource(self.region)
            self.region_workers = [
                a for a, w in workers.items() if w.get("resources", {}).get(name, 0) > 0
            ]
        self.max_in_flight = threads * 4
        self.cpu_budget = float("inf")
        self.futures: dict[object, Any] = {}
        self.wake: Wakeup | None = None
        self.done: list[tuple[object, Report]] = []
        self.packer = Packer(state.config.resources, blob_root=None)

    def _constraints(self, spec: StepSpec) -> dict[str, float]:
        """The task's own cpu and memory, else its job's machine's; a machine's must be
        declared by the workers, the others count only where they are."""
        machine = self.machine
        own_cpu = spec.task is not None and spec.task.cpu is not None
        cpu = machine["cpu"] if "cpu" in machine and not own_cpu else spec.cpu
        memory = spec.memory if spec.memory is not None else machine.get("memory")
        wanted: dict[str, float] = {}
        if "cpu" in machine or any("cpu" in r for r in self.resources):
            wanted["cpu"] = cpu
        if memory is not None and (
            "memory" in machine or any("memory" in r for r in self.resources)
        ):
            wanted["memory"] = float(memory)
        return wanted

    def refuse(self, spec: StepSpec) -> str | None:
        wanted = self._constraints(spec)
        if self.machine or self.region is not None:
            reason = unmet_on(self.resources, wanted, self.region)
            if reason is None:
                return None
            return f"task {spec.key!r} of job {self.state.job.name!r} (require=): {reason}"
        if not wanted:
            return None
        if any(
            all(r.get(name, 0) >= amount for name, amount in wanted.items()) for r in self.resources
        ):
            return None
        asked = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        return (
            f"task {spec.key!r} asks for {asked}, more than any worker of the Dask cluster "
            f"declares ({self.resources}); start a worker with more "
            f"(dask worker ADDRESS --resources ...) or lower the task's needs"
        )

    def has_room(self) -> bool:
        return not self.done and len(self.futures) < self.max_in_flight

    def submit(self, spec: StepSpec, attempt: int, meta: RunMeta) -> object:
        # Outputs come back through Dask; the worker stops a timed-out task itself.
        if not self.local:
            meta = dataclasses.replace(meta, log_dir=None)
        payload = self.packer.pack(spec, attempt, meta, timeout=spec.timeout)
        handle = object()
        future = self.client.submit(
            run_bytes,
            payload,
            pure=False,
            resources=self._constraints(spec) or None,
            workers=self.region_workers,
            key=f"conveyor-{meta.run_id[:8]}-{spec.key}-{attempt}-{id(handle):x}",
        )
        self.futures[handle] = future
        future.add_done_callback(lambda _: self._poke())
        return handle

    def _poke(self) -> None:
        if self.wake is not None:
            self.wake.poke()

    def wait(
        self, timeout: float, running: dict[object, Running], wake: Wakeup
    ) -> list[tuple[object, Report]]:
        # A future that ends wakes the loop (its callback runs in the client's thread).
        self.wake = wake
        if not self.done:
            if not any(f.done() for f in self.futures.values()):
                wake.wait(timeout)
            for handle, future in list(self.futures.items()):
                if future.done():
                    del self.futures[handle]
                    self.done.append((handle, _report(future)))
        done, self.done = self.done, []
        return done

    def stop(self, handle: object, error: ConveyorError) -> None:
        future = self.futures.pop(handle, None)
        if future is None:
            return
        future.cancel()
        self.done.append((handle, Report(error=error, user_code=False)))

    def load(self, value: StoredValue) -> Any:
        return self.state.instance.result_store.load(value.pointer)

    def close(self) -> None:
        self.wake = None
        for future in self.futures.values():
            future.cancel()
        self.futures.clear()


def region_resource(region: str) -> str:
    """The Dask worker resource that places a worker in ``region``: ``region-<name>``."""
    return f"region-{region}"


def unmet_on(
    workers: list[dict[str, Any]], wanted: Mapping[str, float], region: str | None
) -> str | None:
    """Why no worker of ``workers`` (their declared resources) has the ``wanted`` cpu and
    memory in ``region``, or ``None`` when one has."""
    if region is not None:
        name = region_resource(region)
        workers = [w for w in workers if w.get(name, 0) > 0]
        if not workers:
            return (
                f"no worker of the Dask cluster is in region {region!r}: start workers there "
                f"with dask worker ADDRESS --resources {name}=1"
            )
    for name in wanted:
        if not any(name in w for w in workers):
            return (
                f"no worker of the Dask cluster declares {name}, so a machine of "
                f"{_amounts(wanted)} cannot be checked: start workers with --resources "
                f'(e.g. dask worker ADDRESS --resources "cpu=4,memory=16e9")'
            )
    if any(all(w.get(k, 0) >= v for k, v in wanted.items()) for w in workers):
        return None
    return (
        f"no worker of the Dask cluster{'' if region is None else f' in region {region!r}'} "
        f"has {_amounts(wanted)} (they declare {workers}); start a bigger worker or ask for less"
    )


def _amounts(wanted: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in wanted.items())


def _report(future: Any) -> Report:
    try:
        data = future.result()
    except Exception as e:
        name = type(e).__name__
        if name == "KilledWorker":
            return Report(
                error=WorkerLostError(f"the Dask workers running this task died: {e}"),
                user_code=False,
            )
        return Report(
            error=ExecutionError(f"Dask could not run the task: {name}: {e}"), user_code=False
        )
    return loads_report(data)
