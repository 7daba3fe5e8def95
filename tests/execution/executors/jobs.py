"""Workflows shared by the executor suites. A module, so that worker processes import it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conveyor import Config, Resource, RetryPolicy, task, workflow


@task
def one() -> int:
    return 1


@task
def inc(x: int) -> int:
    print(f"inc {x}")
    return x + 1


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@workflow
def chain() -> None:
    x = one()
    for _ in range(9):
        x = inc(x)


@workflow
def diamond() -> None:
    top = one()
    add(inc(top), inc(top))


@workflow
def fan_out_with_failure() -> None:
    s = one()
    total([inc(s) for _ in range(20)])
    inc(boom(s))


class Scale(Config):
    factor: int = 2


@task
def scaled(x: int, cfg: Scale) -> int:
    return x * cfg.factor


@workflow
def configured() -> None:
    scaled(one())


class Counter(Resource):
    start: int = 100

    def setup(self) -> None:
        self._opened = True

    def teardown(self) -> None:
        self._opened = False


@task
def use_counter(x: int, counter: Counter) -> int:
    assert counter._opened
    return x + counter.start


@workflow(resources={"counter": Counter()})
def with_resource() -> None:
    use_counter(one())


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
def retried() -> None:
    flaky()


@task
def exits(x: int) -> int:
    os._exit(1)


@task
def waits_to_be_killed(x: int, cfg: FileConfig) -> int:
    Path(cfg.path).write_text(str(os.getpid()))
    time.sleep(60)
    return 0


@task
def slow_sibling(x: int) -> int:
    time.sleep(0.5)
    return x + 1


@workflow
def crashes() -> None:
    s = one()
    exits(s)
    waits_to_be_killed(s)
    slow_sibling(s)


@task(timeout=1)
def sleeps_with_child(cfg: FileConfig) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(cfg.path).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(60)


@workflow
def times_out() -> None:
    sleeps_with_child()


@task(memory="100m")
def hog() -> int:
    data = b"x" * (1024**3)
    return len(data)


@workflow
def hogs() -> None:
    hog()
    one()


@task(cpu=64)
def greedy() -> int:
    return 1


@workflow
def too_greedy() -> None:
    greedy()
    one()


@task
def long_task(cfg: FileConfig) -> None:
    with open(cfg.path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(60)


@workflow
def long_running() -> None:
    long_task()
    long_task().alias("long_task_b")
    long_task().alias("long_task_c")


@workflow(executor="multiprocess")
def diamond_in_processes() -> None:
    top = one()
    add(inc(top), inc(top))
