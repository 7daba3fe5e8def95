"""The worker side of the multiprocess executor: a loop that runs calls sent by the pool.

A call arrives as a cloudpickled payload. The task's function travels by
reference (its module and name, or the workspace file it came from) and by
value only where no reference works (``__main__``, notebooks, closures).
Outputs larger than the inline limit are written to the result store here,
so that only a pointer crosses the pipe back; one that cannot be written
fails its attempt with the ``StorageError``.
"""

from __future__ import annotations

import importlib
import pickle
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cloudpickle
from tblib import pickling_support  # type: ignore[import-untyped]

from conveyor.definitions.retry import NO_RETRY
from conveyor.definitions.task import Task
from conveyor.errors import ConfigError, ExecutionError, StorageError, UserCodeError
from conveyor.execution.capture import routed_streams
from conveyor.execution.executors.base import StoredValue
from conveyor.execution.state import RunMeta
from conveyor.execution.steps import (
    Report,
    StepSpec,
    call_task,
    stored_failure,
    unpicklable_result,
)
from conveyor.workspace import WORKSPACE_PREFIX, import_file

FnRef = tuple[str, ...]

_workspace_import = threading.Lock()


class RemoteTaskError(ExecutionError):
    """A task's exception that could not be sent back from its worker as it is."""


def function_ref(fn: Any) -> tuple[str, Any]:
    """How a worker finds ``fn``: ``("ref", (module, qualname, file))`` or ``("value", bytes)``.

    By reference where a worker can import it the same way: a module with a
    file, or a workspace file. By value (cloudpickle) otherwise: ``__main__``,
    notebooks, code run with ``exec``, functions defined inside functions.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    mod = sys.modules.get(module) if module else None
    file = getattr(mod, "__file__", None)
    if module and module != "__main__" and file and "<" not in qualname:
        return ("ref", (module, qualname, file))
    return ("value", cloudpickle.dumps(fn))


def _resolve_function(ref: tuple[str, Any]) -> Any:
    kind, data = ref
    if kind == "value":
        return cloudpickle.loads(data)
    module_name, qualname, file = data
    # A Dask worker resolves calls on several threads at once. A module another
    # thread is still importing is in sys.modules half done: import_module waits
    # for it, and workspace files are imported one at a time.
    if file and module_name.startswith(WORKSPACE_PREFIX):
        with _workspace_import:
            module = sys.modules.get(module_name) or import_file(Path(file), module_name)
    else:
        module = importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj.fn if isinstance(obj, Task) else obj


def _load_stored(value: Any, blob_root: str | None) -> Any:
    from conveyor.definitions.graph import replace_leaves
    from conveyor.storage.blobs import DirectoryBlobStore, fetch
    from conveyor.storage.results import ResultSigner, describe

    if blob_root is None:
        return value
    store = DirectoryBlobStore(Path(blob_root))
    signer = ResultSigner(Path(blob_root))  # the blob root is the instance's home

    def leaf(v: Any) -> Any:
        if not isinstance(v, StoredValue):
            return v
        return pickle.loads(signer.open(fetch(store, v.pointer), describe(v.pointer)))

    return replace_leaves(value, leaf)


class Packer:
    """Turns a step into the bytes sent to a worker, for one run's backend.

    The bytes hold the function's reference, then the rest. The rest may hold
    objects of the workspace's own classes (a Config, a Resource), so the
    worker unpickles it only after it has found the function, which imports
    the workspace. References are worked out once per function.
    """

    def __init__(self, resources: dict[str, Any], blob_root: str | None) -> None:
        self.resources = resources
        self.blob_root = blob_root
        self._refs: dict[int, tuple[str, Any]] = {}

    def pack(self, spec: StepSpec, attempt: int, meta: RunMeta, timeout: float | None) -> bytes:
        ref = self._refs.get(id(spec.fn))
        if ref is None:
            try:
                ref = function_ref(spec.fn)
            except Exception as e:
                raise ExecutionError(
                    f"task {spec.key!r} cannot be sent to a worker process: a worker cannot "
                    f"import its function (from {spec.fn.__module__}), so it travels by value "
                    f"with the globals it uses, and one of them cannot be pickled "
                    f"({type(e).__name__}: {e}); create that object inside the task, or move "
                    f"the task into a module"
                ) from e
            self._refs[id(spec.fn)] = ref
        payload = {
            "key": spec.key,
            "name": spec.name,
            "is_async": spec.is_async,
            "args": spec.args,
            "kwargs": spec.kwargs,
            "inject": spec.inject,
            "config": spec.config,
            "attempt": attempt,
            "meta": meta,
            # Resources are set up where the task runs, from their definitions.
            "resources": {n: self.resources[n] for n, how in spec.inject if how == "resource"},
            "blob_root": self.blob_root,
            "timeout": timeout,
            "env": spec.env,
        }
        return pickle.dumps((ref, spec.key, cloudpickle.dumps(payload)))


def run_payload(fn_ref: tuple[str, Any], key: str, rest: bytes) -> Report:
    """Run one call in this process and return its report."""
    from conveyor.execution.resources import opened

    try:
        fn = _resolve_function(fn_ref)
        payload = cloudpickle.loads(rest)
        blob_root = payload["blob_root"]
        args = _load_stored(payload["args"], blob_root)
        kwargs = _load_stored(payload["kwargs"], blob_root)
    except Exception as e:
        return Report(
            error=ExecutionError(
                f"the worker process could not load task {key!r}: {type(e).__name__}: {e}"
            ),
            traceback_text=UserCodeError.format(e),
            user_code=False,
        )
    spec = StepSpec(
        key=payload["key"],
        name=payload["name"],
        fn=fn,
        is_async=payload["is_async"],
        args=args,
        kwargs=kwargs,
        inject=payload["inject"],
        config=payload["config"],
        retry=NO_RETRY,
        timeout=payload["timeout"],
        on_success=(),
        on_failure=(),
        depends_on=[],
        env=payload["env"],
    )
    meta: RunMeta = payload["meta"]
    try:
        with opened(payload["resources"]) as resources:
            report = call_task(spec, payload["attempt"], meta, resources, echo=False)
    except UserCodeError as e:  # a resource's setup or teardown
        return Report(error=e.original, traceback_text=e.traceback_text)
    if report.ok and blob_root is not None:
        report = _store_large(report, payload, blob_root)
    return report


def _store_large(report: Report, payload: dict[str, Any], blob_root: str) -> Report:
    from conveyor.storage.blobs import INLINE_LIMIT, DirectoryBlobStore, safe_name
    from conveyor.storage.results import ResultSigner

    try:
        data = pickle.dumps(report.value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return report  # reported by dumps_report with a clear message
    if len(data) <= INLINE_LIMIT:
        return report
    path = f"results/{payload['meta'].run_id}/{safe_name(payload['key'])}.pkl"
    try:
        # Signed like the run's own results, with the key of the home it writes to.
        sealed = ResultSigner(Path(blob_root)).seal(data)
        uri = DirectoryBlobStore(Path(blob_root)).put(path, sealed)
    except (StorageError, ConfigError) as e:  # not written, or no key to sign it with
        return stored_failure(report, e)
    t = type(report.value)
    report.stored = {
        "uri": uri,
        "data": None,
        "size": len(data),
        "type_name": f"{t.__module__}.{t.__qualname__}"[:255],
    }
    report.value = None
    return report


def loads_report(data: bytes) -> Report:
    """A report from a worker's bytes; a clear error report where they cannot be read."""
    try:
        report: Report = pickle.loads(data)
    except Exception as e:
        return Report(
            error=ExecutionError(f"the task's report could not be read: {e}"), user_code=False
        )
    return report


def dumps_report(report: Report, key: str = "?") -> bytes:
    """Pickle a report of task ``key``, replacing what cannot be pickled by a clear error.

    The task's exception travels with its traceback (tblib), so that the run's
    process raises it, and records it, with the worker's frames.
    """
    if report.error is not None:
        pickling_support.install(report.error)
    try:
        return _dumps(report)
    except Exception as e:
        if report.ok:
            replacement = Report(
                error=unpicklable_result(key, report.value, e),
                out=report.out,
                err=report.err,
                user_code=False,
            )
        else:
            error = report.error
            remote = RemoteTaskError(
                f"{type(error).__module__}.{type(error).__qualname__}: {error}"
            ).with_traceback(error.__traceback__ if error is not None else None)
            pickling_support.install(remote)
            replacement = Report(
                error=remote,
                traceback_text=report.traceback_text,
                out=report.out,
                err=report.err,
            )
        return pickle.dumps(replacement, protocol=pickle.HIGHEST_PROTOCOL)


def _dumps(obj: object) -> bytes:
    """pickle, or cloudpickle where pickle cannot name a class.

    A class (an output's, an exception's) defined in the user's ``__main__``
    arrived by value: this process never imported ``__main__``, so it goes
    back by value too, and the run's process gets its own class again.
    """
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        try:
            data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            raise e from None
        return data


def main(conn: Connection) -> None:
    """Serve calls until the pool closes the pipe."""
    # Ctrl-C in a terminal reaches the whole process group; the run's process
    # decides what happens to the tasks, so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with routed_streams():
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            conn.send_bytes(run_bytes(data))


def run_bytes(data: bytes) -> bytes:
    """A packed payload in (``pack``), a pickled report out: what Dask workers run too."""
    key = "?"
    try:
        fn_ref, key, rest = pickle.loads(data)
        with routed_streams():
            report = run_payload(fn_ref, key, rest)
    except Exception as e:
        report = Report(
            error=ExecutionError(f"the worker failed: {e}"),
            traceback_text=UserCodeError.format(e),
            user_code=False,
        )
    return dumps_report(report, key)
