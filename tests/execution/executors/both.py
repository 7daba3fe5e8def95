"""The same work written both ways: as a ``@workflow`` graph and as a ``@job`` body.

A module, so that worker processes import it. Each pair gives the same
task keys, so one test checks both kinds of job on every executor.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import Config, RetryPolicy, job, task, workflow

# -- where a step runs ---------------------------------------------------------------------


@task
def pid() -> int:
    return os.getpid()


@workflow
def pid_graph() -> None:
    pid()


@job
def pid_body() -> int:
    return pid()  # type: ignore[no-any-return]


# -- retries --------------------------------------------------------------------------------


class FileConfig(Config):
    path: str


@task(retry=RetryPolicy(max_retries=2, delay=0.05))
def flaky(cfg: FileConfig) -> str:
    """Fails on the first attempt: the marker file remembers across processes."""
    path = Path(cfg.path)
    if not path.exists():
        path.write_text("tried")
        raise ConnectionError("first try fails")
    return "ok"


@workflow
def flaky_graph() -> None:
    flaky()


@job
def flaky_body() -> str:
    return flaky()  # type: ignore[no-any-return]


# -- timeouts -------------------------------------------------------------------------------

LATE_SLEEP = 2.0


@task(timeout=0.5)
def late() -> str:
    time.sleep(LATE_SLEEP)
    return "too late"


@task
def quick() -> int:
    return 1


@workflow
def late_graph() -> None:
    late()
    quick()


@job
def late_body() -> int:
    future = late.submit()
    value = quick()
    try:
        future.result()
    except Exception:
        return value  # type: ignore[no-any-return]
    return -1


# -- memory ---------------------------------------------------------------------------------


@task(memory="100m")
def hog() -> int:
    data = b"x" * (1024**3)
    return len(data)


@workflow
def hog_graph() -> None:
    hog()
    quick()


@job
def hog_body() -> int:
    future = hog.submit()
    value = quick()
    try:
        future.result()
    except Exception:
        return value  # type: ignore[no-any-return]
    return -1


@task(memory="100m")
def modest() -> int:
    return len(b"x" * (10 * 1024**2))


@workflow
def modest_graph() -> None:
    modest()


# -- pools ----------------------------------------------------------------------------------


@task(pool="db")
def query(n: int) -> int:
    time.sleep(0.2)
    return n


@task
def collect(values: list[int]) -> int:
    return sum(values)


@workflow
def queries_graph() -> None:
    collect([query(n) for n in range(4)])


@job
def queries_body() -> int:
    return collect([query.submit(n) for n in range(4)])  # type: ignore[no-any-return]


# -- parallel steps -------------------------------------------------------------------------


class MeetConfig(Config):
    folder: str


@task
def meet(name: str, cfg: MeetConfig) -> str:
    """Waits until its partner has started too: only steps that run at once pass."""
    folder = Path(cfg.folder)
    (folder / name).write_text(str(os.getpid()))
    deadline = time.monotonic() + 20
    while len(list(folder.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the partner never started: steps ran one after the other")
        time.sleep(0.01)
    return name


@workflow
def meet_graph() -> None:
    meet("a")
    meet("b")


@job
def meet_body() -> str:
    a, b = meet.submit("a"), meet.submit("b")
    return a.result() + b.result()  # type: ignore[no-any-return]


# -- many short steps, to cancel between them ---------------------------------------------------


@task
def step(x: int) -> int:
    time.sleep(0.3)
    return x + 1


@workflow
def steps_graph() -> None:
    x = step(0)
    for _ in range(29):
        x = step(x)


@job
def steps_body() -> int:
    x = 0
    for _ in range(30):
        x = step(x)
    return x
