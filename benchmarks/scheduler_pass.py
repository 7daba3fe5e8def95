"""W7: the cost of one scheduler pass over 1,000 jobs on one-minute schedules.

A ``Daemon`` on a controlled clock, instance on an SQLite file (and on
PostgreSQL when CONVEYOR_BENCH_POSTGRES_URL is set: a scratch database is
made on that server and dropped afterwards). Two figures:

- a quiet pass, between ticks: what every pass (ten a second) costs;
- the pass at a minute boundary, where each of the 1,000 jobs fires its tick
  and queues its run (timed alone, and with the rest of the pass, which
  starts up to 500 queued runs: each takes its job's slot and is marked
  starting).

The launcher only notes the run; between passes (untimed) the launched runs
are marked succeeded, as quick runs would be within the minute. So the
figures are the scheduler's own bookkeeping, not process starts.

    CONVEYOR_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        .venv/bin/python benchmarks/scheduler_pass.py
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import emit
from conveyor import Instance, RunStatus, job
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace

JOBS = 1000
MINUTE = 60.0


def workspace(n: int) -> Workspace:
    jobs = {}
    for i in range(n):

        def body() -> None: ...

        jobs[f"job_{i}"] = job(name=f"job_{i}", schedule="* * * * *")(body)
    return Workspace(jobs=jobs, origin={"module": "bench"})


def measure(instance: Instance, label: str) -> None:
    ws = workspace(JOBS)
    # A minute boundary an hour ago: run records carry real times, which must not
    # look stale to the monitor on the daemon's clock.
    start = (time.time() // MINUTE - 60) * MINUTE
    clock = {"now": start + 1.0}
    launched: list[str] = []
    daemon = Daemon(
        ws, instance, clock=lambda: clock["now"], launch=lambda rid, _: launched.append(rid)
    )
    daemon.started = start - 0.5

    def finish_launched() -> None:
        """The launched runs run and succeed (untimed), as quick runs would within a minute."""
        for rid in launched:
            instance.run_store.set_status(rid, RunStatus.RUNNING)
            instance.run_store.set_status(rid, RunStatus.SUCCESS)
            instance.lease_store.release(rid)
        launched.clear()

    boundary: list[float] = []
    firing: list[float] = []
    quiet: list[float] = []
    for minute in range(5):
        clock["now"] = start + minute * MINUTE + 0.5
        t0 = time.perf_counter()
        daemon.fire_timed(clock["now"])
        firing.append(time.perf_counter() - t0)
        daemon.tick()  # the rest of the pass: launching, monitoring
        boundary.append(time.perf_counter() - t0)
        finish_launched()
        for k in range(5):
            clock["now"] = start + minute * MINUTE + 1.0 + k
            t0 = time.perf_counter()
            daemon.tick()
            quiet.append(time.perf_counter() - t0)
            finish_launched()
    queued = instance.run_store.count()
    assert queued == 5 * JOBS, queued
    for name, values in (
        ("quiet pass", quiet),
        ("firing 1,000 ticks", firing),
        ("pass firing 1,000 ticks and starting 500 runs", boundary),
    ):
        emit(
            workload=f"W7 {name}",
            storage=label,
            jobs=JOBS,
            n=len(values),
            median_ms=round(statistics.median(values) * 1000, 1),
            worst_ms=round(max(values) * 1000, 1),
        )


def main() -> None:
    logging.getLogger("conveyor.daemon").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        instance = Instance.at(Path(tmp) / "home")
        measure(instance, "sqlite file")
        instance.close()
    base = os.environ.get("CONVEYOR_BENCH_POSTGRES_URL")
    if base:
        with scratch_database(base) as url, tempfile.TemporaryDirectory() as tmp:
            instance = Instance.at(Path(tmp) / "home", database_url=url)
            measure(instance, "postgresql")
            instance.close()


@contextmanager
def scratch_database(base: str) -> Iterator[str]:
    """A new database on the server of ``base``, dropped afterwards."""
    import sqlalchemy as sa

    name = f"conveyor_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield str(sa.make_url(base).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
