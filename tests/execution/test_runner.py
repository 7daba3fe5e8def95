"""The run worker's leftovers: old worker logs are removed, the launch server's log stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import Instance
from conveyor.execution.runner import prune_worker_logs


def test_old_worker_logs_are_removed(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    assert prune_worker_logs(instance) == 0  # no folder yet
    workers = tmp_path / "home" / "workers"
    workers.mkdir(parents=True)
    week = 7 * 86400
    old, fresh, server = (workers / n for n in ("a1.log", "b2.log", "launch-server.log"))
    for path in (old, fresh, server):
        path.write_text("run a1 success\n")
    long_ago = time.time() - week - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(server, (long_ago, long_ago))
    assert prune_worker_logs(instance) == 1
    assert sorted(p.name for p in workers.iterdir()) == ["b2.log", "launch-server.log"]
    assert prune_worker_logs(instance, max_age=0) == 1  # everything but the server's log
    assert [p.name for p in workers.iterdir()] == ["launch-server.log"]
    instance.close()
