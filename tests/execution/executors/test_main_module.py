"""Tasks written in ``__main__`` (a script, ``python -m``, a notebook) run in workers.

Workers never import the user's script: its tasks, and the classes they use,
travel by value, so a script needs no ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conveyor import Instance, task, workflow
from conveyor.errors import ExecutionError
from conveyor.execution.executors.multiprocess import MultiprocessExecutor

# No guard: every process that imported this script would append its pid to
# MARKS, and would start the run again.
SCRIPT = """
import json
import os
from dataclasses import dataclass

from conveyor import Config, task, workflow

with open(os.environ["MARKS"], "a") as marks:
    marks.write(f"{os.getpid()}\\n")


class Source(Config):
    limit: int


@dataclass
class Count:
    n: int


class Refused(Exception):
    pass


@task
def extract(config: Source) -> list[int]:
    return list(range(config.limit))


@task
def count(rows: list[int]) -> Count:
    return Count(len(rows))


@task
def pid(c: Count) -> int:
    return os.getpid()


@task
def refuse() -> None:
    raise Refused("not today")


@workflow
def etl():
    pid(count(extract()))
    refuse()


result = etl.run(
    {"tasks": {"extract": {"config": {"limit": 7}}}},
    executor=EXECUTOR,
    raise_on_error=False,
)
print(json.dumps({
    "count": result.output("count").n,
    "same_class": type(result.output("count")) is Count,
    "worker_pid": result.output("pid"),
    "refused": isinstance(result.failures["refuse"].original, Refused),
}))
"""

MULTIPROCESS = ("from conveyor import MultiprocessExecutor", "MultiprocessExecutor(max_workers=2)")
DASK = (
    "from conveyor.execution.executors.dask import DaskExecutor",
    "DaskExecutor(n_workers=1, threads_per_worker=1)",
)


def _run_script(tmp_path: Path, executor: tuple[str, str], how: str) -> dict[str, object]:
    """Write the script with ``executor``, run it as ``how`` does, and check what it left."""
    imports, expression = executor
    source = imports + "\n" + SCRIPT.replace("EXECUTOR", expression)
    (tmp_path / "etl_script.py").write_text(textwrap.dedent(source))
    marks = tmp_path / "marks"
    home = tmp_path / "home"
    env = {**os.environ, "CONVEYOR_HOME": str(home), "MARKS": str(marks)}
    env.pop("CONVEYOR_DATABASE_URL", None)
    args = ["etl_script.py"] if how == "script" else ["-m", "etl_script"]
    out = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    seen: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    # Only the script's own process ran it, so one run was recorded.
    [script_pid] = marks.read_text().split()
    assert seen["worker_pid"] != int(script_pid)
    instance = Instance.at(home)
    try:
        assert [r.status for r in instance.runs("etl")] == ["failure"]
    finally:
        instance.close()
    return seen


@pytest.mark.parametrize("how", ["script", "module"])
def test_an_unguarded_script_runs_on_the_multiprocess_executor(tmp_path: Path, how: str) -> None:
    seen = _run_script(tmp_path, MULTIPROCESS, how)
    assert seen == {
        "count": 7,
        "same_class": True,
        "worker_pid": seen["worker_pid"],
        "refused": True,
    }


@pytest.mark.slow
def test_an_unguarded_script_runs_on_a_local_dask_cluster(tmp_path: Path) -> None:
    seen = _run_script(tmp_path, DASK, "script")
    assert (seen["count"], seen["same_class"], seen["refused"]) == (7, True, True)


def test_a_function_that_cannot_travel_fails_its_task_and_frees_its_worker(
    instance: Instance,
) -> None:
    lock = threading.Lock()

    @task
    def locked() -> bool:  # a closure: it travels by value, with the lock
        with lock:
            return True

    @task
    def plain() -> int:
        return 1

    @workflow
    def guarded() -> None:
        locked()
        plain()

    result = guarded.run(
        executor=MultiprocessExecutor(max_workers=1), instance=instance, raise_on_error=False
    )
    error = result.failures["locked"]
    assert isinstance(error, ExecutionError)
    assert "task 'locked' cannot be sent to a worker process" in str(error)
    assert "cannot pickle '_thread.lock' object" in str(error)
    assert result.output("plain") == 1  # on the one worker, which nothing was sent to
