"""W1-W3: in-process per-task overhead with durable recording on an SQLite file.

Each workload runs as a Conveyor workflow recorded in an instance on an
SQLite file (as a user runs it), and as plain Python in the same process.
Per-task overhead is (conveyor - plain) / tasks, from medians of warm runs.

    .venv/bin/python benchmarks/inprocess.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import emit, median_time
from conveyor import Instance, Job, task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@task
def source() -> int:
    return 0


@task
def total(values: list[int]) -> int:
    return sum(values)


def chain(n: int) -> Job:
    def body() -> None:
        x = inc(0)
        for _ in range(n - 1):
            x = inc(x)

    return workflow(name=f"chain_{n}")(body)


def fan_out(k: int) -> Job:
    def body() -> None:
        s = source()
        total([inc(s) for _ in range(k)])

    return workflow(name=f"fanout_{k}")(body)


def layered(layers: int, width: int) -> Job:
    def body() -> None:
        prev = [inc(0) for _ in range(width)]
        for _ in range(layers - 1):
            prev = [inc(prev[i]) for i in range(width)]

    return workflow(name=f"layered_{layers}x{width}")(body)


def plain_chain(n: int) -> int:
    x = inc.fn(0)
    for _ in range(n - 1):
        x = inc.fn(x)
    return x


def plain_fan_out(k: int) -> int:
    s = source.fn()
    return total.fn([inc.fn(s) for _ in range(k)])


def measure(
    name: str,
    job: Job,
    tasks: int,
    plain: float,
    instance: Instance,
    repeats: int,
    expect: object,
    output: str,
) -> None:
    result = job.run(instance=instance)
    assert result.output(output) == expect, (name, result.output(output), expect)
    took = median_time(lambda: job.run(instance=instance), repeats, warmup=0)
    per_task = (took - plain) / tasks
    emit(
        workload=name,
        tasks=tasks,
        conveyor_s=round(took, 4),
        plain_s=round(plain, 6),
        per_task_us=round(per_task * 1e6, 1),
        recording="sqlite file",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no W3")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as home:
        instance = Instance.at(home)
        for n in (10, 100, 500):
            plain = median_time(lambda n=n: plain_chain(n), 50)
            measure(
                f"W1 chain {n}",
                chain(n),
                n,
                plain,
                instance,
                repeats,
                n,
                f"inc_{n}" if n > 1 else "inc",
            )
        for k in (100, 1000, 10_000):
            plain = median_time(lambda k=k: plain_fan_out(k), 20)
            measure(
                f"W2 fan-out {k}",
                fan_out(k),
                k + 2,
                plain,
                instance,
                repeats if k < 10_000 else 3,
                k,
                "total",
            )
        if not args.quick:
            started = time.perf_counter()
            job = layered(100, 100)
            defined = time.perf_counter() - started
            result = job.run(instance=instance)
            ran = time.perf_counter() - started - defined
            assert result.success
            assert len(result.task_keys) == 10_000
            emit(
                workload="W3 layered 100x100",
                tasks=10_000,
                define_s=round(defined, 3),
                run_s=round(ran, 3),
                total_s=round(defined + ran, 3),
                recording="sqlite file",
            )
        instance.close()


if __name__ == "__main__":
    main()
