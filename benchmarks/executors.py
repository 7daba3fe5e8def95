"""W4: out-of-process dispatch cost, on a warm multiprocess pool and on Dask.

Runs W1 (chain 10) and W2 (fan-out 100) from benchmarks/inprocess.py on each
executor, recorded in an instance on an SQLite file; the pool and the
cluster are warmed by one run first. Per-task overhead is
(executor - plain Python) / tasks.

    .venv/bin/python benchmarks/executors.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import emit, median_time
from conveyor import Instance
from conveyor.execution.executors.dask import DaskExecutor
from conveyor.execution.executors.multiprocess import MultiprocessExecutor
from inprocess import chain, fan_out, plain_chain, plain_fan_out


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        instance = Instance.at(home)
        executors = {
            "multiprocess (2 warm workers)": MultiprocessExecutor(max_workers=2),
            "dask (LocalCluster, 2 workers)": DaskExecutor(n_workers=2, threads_per_worker=1),
        }
        workloads = [
            ("W4 chain 10", chain(10), 10, median_time(lambda: plain_chain(10), 50), "inc_10", 10),
            (
                "W4 fan-out 100",
                fan_out(100),
                102,
                median_time(lambda: plain_fan_out(100), 50),
                "total",
                100,
            ),
        ]
        for label, executor in executors.items():
            for name, job, tasks, plain, key, expect in workloads:
                result = job.run(instance=instance, executor=executor)
                assert result.output(key) == expect

                def run(job=job, executor=executor):  # type: ignore[no-untyped-def]
                    return job.run(instance=instance, executor=executor)

                took = median_time(run, 7, warmup=1)
                emit(
                    workload=name,
                    executor=label,
                    tasks=tasks,
                    seconds=round(took, 4),
                    per_task_ms=round((took - plain) / tasks * 1000, 2),
                    recording="sqlite file",
                )
            executor.close()
        instance.close()


if __name__ == "__main__":
    main()
