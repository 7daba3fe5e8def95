"""The anchor for W1/W2: the same workloads as Dagster ops, run in-process.

Runs in its own virtual environment (Dagster is no dependency of Conveyor):

    python3.11 -m venv /tmp/anchors/dagster
    /tmp/anchors/dagster/bin/pip install "dagster==1.13.*"
    /tmp/anchors/dagster/bin/python benchmarks/anchors/dagster_inprocess.py

Prints one JSON line per workload, like benchmarks/inprocess.py, so the two
can be compared as ratios from one session on one machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, job, op

# benchmarks/common.py needs only the standard library, so this venv can use it too.
sys.path.insert(0, str(Path(__file__).parents[1]))
from common import median_time


@op
def zero() -> int:
    return 0


@op
def inc(x: int) -> int:
    return x + 1


@op
def total(values: list[int]) -> int:
    return sum(values)


def chain(n: int) -> Any:
    @job(name=f"chain_{n}")
    def body() -> None:
        x = inc(zero())
        for _ in range(n - 1):
            x = inc(x)

    return body


def fan_out(k: int) -> Any:
    @job(name=f"fanout_{k}")
    def body() -> None:
        s = zero()
        total([inc(s) for _ in range(k)])

    return body


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as home:
        instance = DagsterInstance.local_temp(home)
        cases = [("W1 chain", 10, chain), ("W1 chain", 100, chain), ("W2 fan-out", 100, fan_out)]
        if not quick:
            cases += [("W1 chain", 500, chain), ("W2 fan-out", 1000, fan_out)]
        for name, n, make in cases:
            definition = make(n)
            repeats = 3 if n <= 100 else 1

            def run(definition: Any = definition) -> None:
                assert definition.execute_in_process(instance=instance).success

            took = median_time(run, repeats)
            tasks = n + 1 if make is chain else n + 2
            print(
                json.dumps(
                    {
                        "workload": f"{name} {n}",
                        "tasks": tasks,
                        "dagster_s": round(took, 3),
                        "per_task_us": round(took / tasks * 1e6),
                        "recording": "dagster local instance (disk)",
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
