"""Jobs for the chaos test: ticked runs of 1-5 s under a concurrency limit, each in a ledger.

Each run sleeps for a time derived from its tick (the end of its interval),
so a run's length is the same however often it is started. It writes one
line when it begins and one when it ends to the ledger named by
``CONVEYOR_TEST_LEDGER``, each in one ``O_APPEND`` write:

    begin JOB RUN_ID PID START
    end JOB RUN_ID PID START END

Ticks stop at ``CONVEYOR_TEST_TICKS_UNTIL`` (epoch seconds; the jobs'
``interval=`` end), so that the queue can drain after the chaos. The
periods keep each job's slots about 80 % busy: its limit is often reached,
and its queue stays short.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from conveyor import RunContext, job

_until = os.environ.get("CONVEYOR_TEST_TICKS_UNTIL")
INTERVAL = {
    "start": "2020-01-01",
    "end": datetime.fromtimestamp(float(_until), UTC) if _until else None,
}


def duration(tick_at: float) -> float:
    """1-5 s, mostly short (mean 2 s), a pure function of the tick."""
    u = (int(tick_at) * 2654435761 % 2**32) / 2**32
    return 1.0 + 4.0 * u**3


def _note(line: str) -> None:
    fd = os.open(os.environ["CONVEYOR_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _work(context: RunContext) -> float:
    assert context.interval is not None
    took = duration(context.interval.end.timestamp())
    start = time.time()
    head = f"{context.job_name} {context.run_id} {os.getpid()} {start:.6f}"
    _note(f"begin {head}\n")
    time.sleep(took)
    _note(f"end {head} {time.time():.6f}\n")
    return took


@job(trigger="every:3s", catchup="all", interval=INTERVAL, execute={"concurrency": 1})
def chaos_single(context: RunContext) -> float:
    return _work(context)


@job(trigger="every:1s", catchup="all", interval=INTERVAL, execute={"concurrency": 3})
def chaos_triple(context: RunContext) -> float:
    return _work(context)
