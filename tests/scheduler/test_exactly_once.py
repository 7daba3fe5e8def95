"""Exactly once: daemons killed with SIGKILL and restarted, two at a time, on PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import Instance

WORKSPACE = Path(__file__).parent / "ticking.py"
PERIOD = 2.0


def _daemon(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "daemon", str(WORKSPACE)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_every_tick_has_exactly_one_run(pg_server_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": pg_server_url,
        "CONVEYOR_HOME": str(tmp_path / "home"),
    }
    instance = Instance.at(tmp_path / "home", database_url=pg_server_url)
    rng = random.Random(7)
    steady = _daemon(env)
    flaky = _daemon(env)
    started = time.monotonic()
    kills = 0
    try:
        while time.monotonic() - started < 60:
            time.sleep(rng.uniform(1.0, 6.0))
            flaky.send_signal(signal.SIGKILL)
            flaky.wait()
            kills += 1
            if kills == 4:
                # both down for a while: the ticks missed meanwhile must be caught up
                steady.send_signal(signal.SIGKILL)
                steady.wait()
                time.sleep(5)
                steady = _daemon(env)
            flaky = _daemon(env)
        time.sleep(3)
    finally:
        for proc in (steady, flaky):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    ticks = instance.tick_store.for_job("ticking", limit=10_000)
    times = [t["tick_at"] for t in ticks]
    assert kills >= 8
    assert len(times) >= 25
    # one tick per 2 s boundary, no gap (catchup="all"), no repeat (the unique key)
    assert times == [times[0] + PERIOD * i for i in range(len(times))]
    # and exactly one run per tick
    run_ids = [t["run_id"] for t in ticks]
    assert len(set(run_ids)) == len(run_ids)
    assert instance.run_store.count(job_name="ticking") == len(ticks)
    instance.close()
