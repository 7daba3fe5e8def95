"""The run worker: a process that executes one recorded run.

    python -m conveyor.execution.runner RUN_ID
    python -m conveyor.execution.runner --serve [--file F | --module M]

The first form runs RUN_ID (``conveyor run --detach``). The second is the
daemon's *launch server*: it imports Conveyor and loads the workspace once,
then forks a worker for each run id it reads on its standard input, so a
run starts within milliseconds instead of after a new Python process has
imported everything (about half a second of CPU).

A worker loads the run's workspace from the run's origin, executes the run
with the executor named there, heartbeats while it works, and exits 0 when
the run succeeded, 1 otherwise. A run whose workspace cannot be loaded ends
``failure`` with the reason.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError, LeaseLostError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus

# The launch server's exit code when it will not fork (the workspace started threads).
REFUSED = 3
# Worker logs older than this are removed (``prune_worker_logs``).
WORKER_LOG_MAX_AGE = 7 * 86400.0


def _log_dir(instance: Instance) -> Path:
    return (instance.home or Path.cwd()) / "workers"


def _log_file(instance: Instance, name: str) -> Any:
    log_dir = _log_dir(instance)
    log_dir.mkdir(parents=True, exist_ok=True)
    return open(log_dir / f"{name}.log", "ab")


def prune_worker_logs(instance: Instance, max_age: float = WORKER_LOG_MAX_AGE) -> int:
    """Remove run workers' logs not written to for ``max_age`` seconds; returns how many.

    A worker's log holds what it printed outside its tasks (a workspace that
    failed to load, a crash); the run's own record keeps the run's logs and
    error, so an old worker log is only a leftover. The launch server's log
    stays.
    """
    log_dir = _log_dir(instance)
    if not log_dir.is_dir():
        return 0
    cutoff = time.time() - max_age
    removed = 0
    for path in log_dir.glob("*.log"):
        if path.name == "launch-server.log":
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def start(run_id: str, instance: Instance) -> subprocess.Popen[bytes]:
    """Start a detached run worker for ``run_id``; returns its process.

    The caller reaps it (``poll()``) when it is long-lived; a short-lived
    caller may exit first, and the worker goes on in its own session. Its
    output goes to ``<CONVEYOR_HOME>/workers/<run id>.log``.
    """
    with _log_file(instance, run_id) as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "conveyor.execution.runner", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    # The worker answers for the run from now on: this process may exit first.
    instance.run_store.hand_over(run_id, worker.pid)
    return worker


def start_server(instance: Instance, origin: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start a launch server: it preloads ``origin``'s workspace, then forks a worker for
    each run id written to its standard input (``launch``)."""
    args = [sys.executable, "-m", "conveyor.execution.runner", "--serve"]
    if origin.get("environment"):
        args += ["--environment", str(origin["environment"]), "--version", str(origin["version"])]
    elif origin.get("file"):
        args += ["--file", str(origin["file"])]
    elif origin.get("module"):
        args += ["--module", str(origin["module"])]
    elif origin.get("folder"):
        args += ["--folder", str(origin["folder"])]
    with _log_file(instance, "launch-server") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )


def launch(server: subprocess.Popen[bytes], run_id: str) -> bool:
    """Have a launch server start ``run_id``; False if the server is gone."""
    if server.poll() is not None or server.stdin is None:
        return False
    try:
        server.stdin.write(f"{run_id}\n".encode())
        server.stdin.flush()
    except (BrokenPipeError, OSError):
        return False
    return True


def serve(origin: dict[str, Any]) -> int:
    """The launch server's loop: one forked worker per run id read from standard input.

    Forking is safe here: this process has opened no database connection
    (each worker opens its own), and it refuses to fork (exit ``REFUSED``)
    when loading the workspace started a thread. It ignores SIGCHLD, so its
    finished workers are reaped by the kernel.
    """
    import signal

    try:
        preloaded = _preload(origin) if origin else None
    except Exception:
        preloaded = None  # each run's own load reports the problem
    import conveyor.execution.launch  # noqa: F401  (imported once, shared by every fork)

    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        # A fork copies one thread and every lock the others held: a worker forked here
        # could hang on a lock forever. Runs start in fresh processes instead.
        print(
            f"the launch server will not fork: loading {origin} started threads "
            f"({', '.join(threads)}); each run starts in a fresh process instead (slower). "
            f"Start threads inside tasks or resources, not at import",
            file=sys.stderr,
        )
        return REFUSED
    # Forked workers share the loaded objects' pages until they write to them; a
    # collection in a worker would touch (and copy) them all. Frozen objects are not
    # collected, so each worker starts without that cost.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        run_id = line.strip()
        if not run_id:
            continue
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 1
            try:
                instance = Instance.from_env()
                with _log_file(instance, run_id) as log:
                    os.dup2(log.fileno(), 1)
                    os.dup2(log.fileno(), 2)
                code = _run(run_id, instance, preloaded)
            except BaseException as e:
                # Say why: os._exit below drops a pending traceback, and the run would stay
                # starting, with no trace of its worker, until the judge's start timeout.
                traceback.print_exc()
                _note_crash(run_id, e)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
    return 0


def load_origin(origin: dict[str, Any], instance: Instance) -> Any:
    """The workspace a run's ``origin`` names: a deployed version's code (``{"environment",
    "version"}``: its jobs scoped to the environment; ``{"version"}`` alone: unscoped), or
    the files on disk (``{"file"}``, ``{"module"}``, ``{"folder"}``)."""
    if origin.get("version") is not None:
        from conveyor.execution.environments import environment_workspace, version_workspace

        if origin.get("environment"):
            return environment_workspace(instance, origin["environment"], int(origin["version"]))
        return version_workspace(instance, int(origin["version"]))
    from conveyor.workspace import load

    return load(origin)


def _preload(origin: dict[str, Any]) -> Any:
    """The launch server's workspace. A deployed version is read from the database, and
    the connections are closed before any fork: each worker opens its own."""
    if origin.get("version") is None:
        from conveyor.workspace import load

        return load(origin)
    instance = Instance.from_env()
    try:
        return load_origin(origin, instance)
    finally:
        instance.db.engine.dispose()


def _same_code(loaded: dict[str, Any], origin: dict[str, Any]) -> bool:
    """A workspace loaded from ``loaded`` has the code a run of ``origin`` runs."""
    keys = ("file", "module", "folder", "environment", "version")
    return all(str(loaded.get(k)) == str(origin.get(k)) for k in keys)


def _note_crash(run_id: str, error: BaseException) -> None:
    """Record a worker's unhandled exception with the run, as well as in the worker's log."""
    try:
        text = "".join(traceback.format_exception(error))
        Instance.from_env().event_store.add(
            run_id,
            "worker_crash",
            f"the run worker failed: {type(error).__name__}: {error}\n{text}",
        )
    except Exception:
        pass  # the worker log has it


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        origin: dict[str, Any] = {}
        if argv[1:2] == ["--environment"] and argv[3:4] == ["--version"]:
            origin = {"environment": argv[2], "version": int(argv[4])}
        elif argv[1:2] == ["--file"]:
            origin = {"file": str(Path(argv[2]).resolve())}
        elif argv[1:2] == ["--module"]:
            origin = {"module": argv[2]}
        elif argv[1:2] == ["--folder"]:
            origin = {"folder": str(Path(argv[2]).resolve())}
        return serve(origin)
    if len(argv) != 1:
        print(
            "usage: python -m conveyor.execution.runner RUN_ID "
            "| --serve [--file F | --module M | --folder D | --environment E --version N]",
            file=sys.stderr,
        )
        return 2
    return _run(argv[0], Instance.from_env(), None)


def _run(run_id: str, instance: Instance, preloaded: Any) -> int:
    run = instance.run(run_id)
    if run.status is not RunStatus.STARTING:
        # Canceled, put back in the queue, or begun by another worker meanwhile.
        print(f"run {run_id} is {run.status}: nothing to start", file=sys.stderr)
        return 0 if run.status is RunStatus.SUCCESS else 1
    token = run.token
    if not instance.run_store.adopt(run_id, token):
        print(f"run {run_id} was started again or canceled meanwhile", file=sys.stderr)
        return 1
    from conveyor.execution.venvs import venv_for_run

    try:
        python = venv_for_run(instance, run)
    except Exception as e:
        message = (
            f"the run worker could not prepare the environment of version "
            f"{run.deployed_version}: {type(e).__name__}: {e}"
        )
        return _fail_start(instance, run_id, token, message)
    if python is not None:
        # The run goes on in its version's environment: this worker, in that interpreter
        # (the same process, so the run's recorded pid stays right).
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(python, [str(python), "-m", "conveyor.execution.runner", run_id])
    origin = run.origin or {}
    try:
        if preloaded is not None and _same_code(preloaded.origin, origin):
            ws = preloaded
        else:
            ws = load_origin(origin, instance)
        job = ws.job(run.job_name)
    except Exception as e:
        message = f"the run worker could not load job {run.job_name!r}: {type(e).__name__}: {e}"
        print(message, file=sys.stderr)
        try:
            instance.run_store.claim(run_id, token)
            instance.run_store.set_status(run_id, RunStatus.FAILURE, error=message, token=token)
        except LeaseLostError:
            pass  # not this worker's run any more
        return 1
    from conveyor.execution.supervisor import supervise

    try:
        instance.run_store.claim(run_id, token)
    except LeaseLostError as e:
        print(str(e), file=sys.stderr)
        return 1
    return supervise(run_id, token, instance, lambda: _execute(run, job, instance, origin))


def _fail_start(instance: Instance, run_id: str, token: int, message: str) -> int:
    """End start ``token`` of a run ``failure`` with ``message``, before it ran."""
    print(message, file=sys.stderr)
    try:
        instance.run_store.claim(run_id, token)
        instance.run_store.set_status(run_id, RunStatus.FAILURE, error=message, token=token)
    except LeaseLostError:
        pass  # not this worker's run any more
    return 1


def _execute(run: Any, job: Any, instance: Instance, origin: dict[str, Any]) -> int:
    """The supervised child: execute the claimed run; exit 0 if it succeeded."""
    from conveyor.execution.launch import execute_run

    try:
        result = execute_run(
            run.id,
            job,
            instance=instance,
            token=run.token,
            executor=origin.get("executor"),
            reuse=reuse_for(run, job, instance),
            supervised=True,
        )
    except ConveyorError as e:
        print(f"run {run.id}: {e}", file=sys.stderr)
        return 1
    print(f"run {run.id} {result.status}")
    return 0 if result.success else 1


def reuse_for(run: Any, job: Any, instance: Instance) -> dict[str, dict[str, Any]] | None:
    """The parent's results a queued run goes on from: a retry after a failure
    (``RETRY_TAG``) and a rerun from failure (``RERUN_TAG`` = ``failure``) reuse the
    parent's succeeded tasks, as `conveyor rerun` does, but for those whose config the
    rerun changes (and what is downstream of them)."""
    from conveyor.execution.launch import INPUT_PREFIX
    from conveyor.execution.rerun import RERUN_TAG, RETRY_TAG, changed_by_config, reusable

    if not run.parent_run_id:
        return None
    if RETRY_TAG not in run.tags and run.tags.get(RERUN_TAG) != "failure":
        return None
    parent = instance.run(run.parent_run_id)
    pointers = instance.result_store.pointers(parent.id)
    changed: set[str] | None = None
    if run.run_config != parent.run_config:
        inputs = {
            k[len(INPUT_PREFIX) :]: instance.result_store.load(p)
            for k, p in pointers.items()
            if k.startswith(INPUT_PREFIX)
        }
        changed = changed_by_config(job, parent, run.run_config, inputs or None)
    return reusable(job, instance, parent, pointers, changed=changed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
