"""The run worker: a process that executes one recorded run (``conveyor run --detach``).

    python -m conveyor.execution.runner RUN_ID

It loads the run's workspace from the run's origin, executes the run with
the executor named there, heartbeats while it works, and exits 0 when the
run succeeded, 1 otherwise. A run whose workspace cannot be loaded ends
``failure`` with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conveyor.errors import ConveyorError
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus


def start(run_id: str, instance: Instance) -> subprocess.Popen[bytes]:
    """Start a detached run worker for ``run_id``; returns its process.

    The caller reaps it (``poll()``) when it is long-lived; a short-lived
    caller may exit first, and the worker goes on in its own session.

    Its output goes to ``<CONVEYOR_HOME>/workers/<run id>.log``.
    """
    log_dir = (instance.home or Path.cwd()) / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{run_id}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor.execution.runner", run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    return proc


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m conveyor.execution.runner RUN_ID", file=sys.stderr)
        return 2
    run_id = argv[0]
    instance = Instance.from_env()
    run = instance.run(run_id)
    try:
        from conveyor.workspace import load

        job = load(run.origin or {}).job(run.job_name)
    except Exception as e:
        message = f"the run worker could not load job {run.job_name!r}: {type(e).__name__}: {e}"
        print(message, file=sys.stderr)
        instance.run_store.set_status(run_id, RunStatus.FAILURE, error=message)
        return 1
    from conveyor.execution.launch import execute_run
    from conveyor.execution.rerun import RETRY_TAG, reusable

    reuse = None
    if run.parent_run_id and RETRY_TAG in run.tags:
        # A retry after a failure goes on from the failure, as `conveyor rerun` does.
        parent = instance.run(run.parent_run_id)
        reuse = reusable(job, instance, parent, instance.result_store.pointers(parent.id))
    try:
        result = execute_run(
            run_id,
            job,
            instance=instance,
            executor=(run.origin or {}).get("executor"),
            reuse=reuse,
        )
    except ConveyorError as e:
        print(f"run {run_id}: {e}", file=sys.stderr)
        return 1
    print(f"run {run_id} {result.status}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
