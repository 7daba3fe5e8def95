"""The supervisor and a child that has just ended its run: the end is not a lost lease."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conveyor import Instance, RunStatus
from tests.commands import home_env

# A worker whose child ends the run and is still exiting when the supervisor's next
# heartbeat comes (the child's last writes and its exit take a moment on a busy machine).
WORKER = """
import sys, time
from conveyor.execution.supervisor import supervise
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus

instance = Instance.from_env()
store = instance.run_store
run_id = store.create(job_name="j", job_version="v", status=RunStatus.QUEUED).id
store.set_status(run_id, RunStatus.STARTING)
store.claim(run_id, 1)

def child():
    store.set_status(run_id, RunStatus.SUCCESS, token=1)
    time.sleep(2.0)
    with open(sys.argv[1], "w") as f:
        f.write("exited on its own")
    return 0

code = supervise(run_id, 1, instance, child)
print(run_id, code)
"""


def test_a_heartbeat_refused_because_the_child_ended_the_run_is_no_lost_lease(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(marker)],
        env=home_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    run_id, code = out.stdout.split()
    assert code == "0"
    assert marker.read_text() == "exited on its own"  # not killed with its group
    assert "no longer this process's" not in out.stderr
    instance = Instance.at(tmp_path / "home")
    try:
        assert instance.run(run_id).status is RunStatus.SUCCESS
        assert instance.event_store.for_run(run_id, kinds=["lease_lost"]) == []
    finally:
        instance.close()
