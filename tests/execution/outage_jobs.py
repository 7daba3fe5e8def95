"""A workspace for the outage tests: a thousand tiny tasks, paced and optionally gated.

The run's process and a daemon load this file. Every task prints one line and
returns a value, so a test can check each task's log and result. The tests
steer the tasks through the environment:

- ``CONVEYOR_TEST_PACE``: seconds each task sleeps, so a run lasts long enough
  for an outage to fall in its middle;
- ``CONVEYOR_TEST_GATE``: a folder. The task of index ``CONVEYOR_TEST_GATE_AT``
  (default: the last) writes ``ready`` there (its process id and the time),
  then waits for a file ``go`` (at most ``GATE_WAIT`` seconds), so a test can
  start an outage at a known point of the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import task, workflow

TASKS = 1000
GATE_WAIT = 120.0


def key(i: int) -> str:
    """The key of task ``i`` in the workflows below."""
    return f"tick_{i:04d}"


def line(i: int) -> str:
    """What task ``i`` prints."""
    return f"tick {i} done"


def value(i: int) -> int:
    """What task ``i`` returns."""
    return i * i + 7


def _gate(i: int) -> None:
    folder = os.environ.get("CONVEYOR_TEST_GATE")
    if not folder or i != int(os.environ.get("CONVEYOR_TEST_GATE_AT", TASKS - 1)):
        return
    gate = Path(folder)
    ready = gate / "ready"
    tmp = gate / ".ready.tmp"
    tmp.write_text(f"{os.getpid()} {time.time():.6f}\n")
    tmp.replace(ready)  # whole or absent, for the test that polls it
    deadline = time.monotonic() + GATE_WAIT
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {i}: no {gate / 'go'} within {GATE_WAIT:g}s")
        time.sleep(0.02)


@task
def tick(i: int) -> int:
    _gate(i)
    pace = float(os.environ.get("CONVEYOR_TEST_PACE", "0"))
    if pace:
        time.sleep(pace)
    print(line(i))
    return value(i)


@workflow
def thousand() -> None:
    for i in range(TASKS):
        tick(i).alias(key(i))
