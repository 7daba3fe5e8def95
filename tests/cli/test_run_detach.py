"""``conveyor run --detach`` takes a slot of the job's concurrency, or queues the run."""

from __future__ import annotations

import signal
import subprocess
import textwrap
from pathlib import Path

from conveyor import Instance, RunStatus
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

RUNS = 6
LIMIT = 2


def _workspace(tmp_path: Path) -> Path:
    """A concurrency-2 job that notes (start, end, pid) in a ledger.

    Each run holds on until the gate file exists (then ~2 s more), so the
    first two detached runs are still running while the other commands run,
    however slow the machine.
    """
    path = tmp_path / "ledgered_ws.py"
    path.write_text(
        textwrap.dedent(f"""
        import os, time
        from conveyor import job

        LEDGER = {str(tmp_path / "ledger")!r}
        GATE = {str(tmp_path / "gate")!r}

        @job(execute={{"concurrency": {LIMIT}}})
        def ledgered():
            start = time.time()
            deadline = start + 120
            while not os.path.exists(GATE) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(2)
            with open(LEDGER, "a") as f:
                f.write(f"{{start}} {{time.time()}} {{os.getpid()}}\\n")
    """)
    )
    return path


def _peak(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_detached_runs_keep_to_the_jobs_concurrency(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    home = tmp_path / "home"
    env = home_env(home)
    daemon_log = tmp_path / "daemon.log"
    daemon: subprocess.Popen[bytes] | None = None
    try:
        outs = [conveyor(env, "run", str(workspace), "ledgered", "--detach") for _ in range(RUNS)]
        for out in outs:
            assert out.returncode == 0, out.stderr
        ids = [out.stdout.strip() for out in outs]
        assert all(len(i) == 32 for i in ids), ids
        started = [out for out in outs if "started in worker process" in out.stderr]
        queued = [out for out in outs if " queued: " in out.stderr]
        assert outs[:LIMIT] == started, [o.stderr for o in outs]
        assert outs[LIMIT:] == queued, [o.stderr for o in outs]
        assert f"job 'ledgered' allows {LIMIT} runs at once and {LIMIT} are active" in (
            queued[0].stderr
        )
        # the later ones queue behind the older queued runs, not only behind the full slots
        assert "1 older run of job 'ledgered' is queued before it" in queued[1].stderr
        assert "3 older runs of job 'ledgered' are queued before it" in queued[3].stderr
        assert all("a daemon (conveyor daemon " in out.stderr for out in queued)
        instance = Instance.at(home)
        try:
            assert [instance.run(i).status for i in ids[LIMIT:]] == [RunStatus.QUEUED] * (
                RUNS - LIMIT
            )
            with daemon_log.open("wb") as log:
                daemon = subprocess.Popen(
                    [*CONVEYOR, "daemon", str(workspace)], env=env, stdout=log, stderr=log
                )
            (tmp_path / "gate").touch()

            def all_ended() -> bool:
                return all(instance.run(i).status.is_terminal for i in ids)

            wait_until(all_ended, 180, f"the {RUNS} runs to end")
            statuses = {i[:8]: instance.run(i).status for i in ids}
            assert set(statuses.values()) == {RunStatus.SUCCESS}, (
                statuses,
                daemon_log.read_text(),
            )
        finally:
            instance.close()
    finally:
        (tmp_path / "gate").touch()  # let whatever still runs end
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    lines = (tmp_path / "ledger").read_text().split()
    rows = [lines[i : i + 3] for i in range(0, len(lines), 3)]
    assert len(rows) == RUNS
    assert len({pid for _, _, pid in rows}) == RUNS  # each run in a worker of its own
    assert _peak([(float(s), float(e)) for s, e, _ in rows]) == LIMIT
