"""The supervisor's side of interactive jobs, on real processes: it waits for a start,
records each start as a run that the process answers for, keeps that run when a new
supervisor adopts the process, stops it after its idle timeout (the run a success, with
the process's output as its logs) or its execute timeout (a failure).

Every process started here is killed in teardown by the pid the store recorded.
"""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.scheduler.supervisor import Supervisor
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.storage.workloads import WorkloadRecord
from conveyor.workspace import load_file
from tests.waiting import wait_until

WORKSPACE = """
import http.server

from conveyor import interactive


def _serve(run_context):
    print(f"{run_context.name}: serving on {run_context.port}", flush=True)
    where = (run_context.host, run_context.port)
    http.server.HTTPServer(where, http.server.BaseHTTPRequestHandler).serve_forever()


@interactive(idle_timeout="2s")
def quiet(run_context):
    _serve(run_context)


@interactive(execute={"timeout": "2s"})
def bounded(run_context):
    _serve(run_context)
"""


@pytest.fixture
def pids() -> Iterator[set[int]]:
    found: set[int] = set()
    yield found
    for pid in found:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _state(sup: Supervisor, name: str, want: str, pids: set[int]) -> WorkloadRecord | None:
    sup.supervise()
    record = sup.instance.workloads.require(name)
    if record.pid is not None:
        pids.add(record.pid)
    return record if record.state == want else None


def test_a_start_is_a_run_kept_by_an_adopting_supervisor_and_ended_when_idle(
    tmp_path: Path, pids: set[int]
) -> None:
    (tmp_path / "lab.py").write_text(textwrap.dedent(WORKSPACE))
    instance = Instance.at(tmp_path / "home")
    first = Supervisor(load_file(tmp_path / "lab.py"), instance, "test:1:a", "testhost")
    first.supervise()
    waiting = instance.workloads.require("quiet")
    assert (waiting.kind, waiting.desired, waiting.state, waiting.pid) == (
        "interactive",
        "stopped",
        "stopped",
        None,
    )
    assert instance.run_store.count(job_name="quiet") == 0

    instance.workloads.set_desired("quiet", "running")  # as `conveyor services start` does
    serving = wait_until(lambda: _state(first, "quiet", "running", pids), 60, "quiet to run")
    assert serving.run_id is not None
    run = instance.run_store.get(serving.run_id)
    assert run.status is RunStatus.RUNNING
    assert run.trigger == "manual"
    assert run.pid == serving.pid  # the process answers for its run, not the daemon

    first.close()  # a daemon stopping: the process goes on
    second = Supervisor(load_file(tmp_path / "lab.py"), instance, "test:1:b", "testhost")
    second.supervise()
    adopted = instance.workloads.require("quiet")
    assert adopted.pid == serving.pid
    assert adopted.run_id == serving.run_id

    idle = wait_until(lambda: _state(second, "quiet", "idle", pids), 60, "quiet to idle out")
    assert idle.pid is None
    assert idle.desired == "stopped"
    ended = instance.run_store.get(serving.run_id)
    assert ended.status is RunStatus.SUCCESS
    assert ended.error is None
    out = instance.log_store.read(serving.run_id, "serve")
    assert f"quiet: serving on {serving.port}" in out
    assert instance.run_store.count(job_name="quiet") == 1


def test_past_its_execute_timeout_it_is_stopped_and_its_run_fails(
    tmp_path: Path, pids: set[int]
) -> None:
    (tmp_path / "lab.py").write_text(textwrap.dedent(WORKSPACE))
    instance = Instance.at(tmp_path / "home")
    sup = Supervisor(load_file(tmp_path / "lab.py"), instance, "test:1:a", "testhost")
    sup.supervise()
    instance.workloads.set_desired("bounded", "running")
    serving = wait_until(lambda: _state(sup, "bounded", "running", pids), 60, "bounded to run")
    stopped = wait_until(lambda: _state(sup, "bounded", "stopped", pids), 60, "the timeout")
    assert stopped.desired == "stopped"
    assert serving.run_id is not None
    run = instance.run_store.get(serving.run_id)
    assert run.status is RunStatus.FAILURE
    assert run.error == "stopped: it ran past its execute timeout of 2s"
