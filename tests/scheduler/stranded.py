"""A job with one slot whose runs report each execution, for the lost-start tests.

Each execution writes ``begin RUN_ID PID TIME`` and ``end RUN_ID PID TIME``
to the ledger named by ``CONVEYOR_TEST_LEDGER``, each in one ``O_APPEND``
write.
"""

from __future__ import annotations

import os
import time

from conveyor import RunContext, job


def _note(event: str, run_id: str) -> None:
    line = f"{event} {run_id} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(os.environ["CONVEYOR_TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@job(execute={"concurrency": 1})
def stranded(context: RunContext) -> int:
    _note("begin", context.run_id)
    time.sleep(0.5)
    _note("end", context.run_id)
    return 1
