"""W8's data: 1,000,000 runs and 10,000,000 task runs in a PostgreSQL database of their own.

.venv/bin/python benchmarks/control_plane_fill.py [--url postgresql://postgres@127.0.0.1/]

Creates (or fills again) the database ``conveyor_bench_w8`` on the server of
``--url``, at the current schema, with rows made inside the server
(``generate_series``): 100 jobs, runs two minutes apart over about four
years, one in 50 failed and a few running or queued, ten task runs each, and
one run of 10,000 tasks (a fan-out of 100 chains of 100) whose run page W8
opens in a browser. Prints the URL to give ``control_plane.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from common import emit
from conveyor.storage.instance import Instance

DATABASE = "conveyor_bench_w8"
RUNS = 1_000_000
TASKS_PER_RUN = 10
JOBS = 100
BIG_RUN = "b" * 32  # the run of 10,000 tasks
BIG_WIDTH, BIG_DEPTH = 100, 100
# The newest run is this old, so that "now" in the UI is after every row.
NEWEST = time.time() - 3600

RUNS_SQL = """
INSERT INTO runs (id, job_name, job_version, status, created_at, started_at, ended_at,
                  updated_at, tags, run_config, trigger, token, batches)
SELECT md5(i::text), 'job_' || lpad((i % :jobs)::text, 3, '0'), 'v1',
       CASE WHEN i > :runs - 5 THEN 'queued'
            WHEN i > :runs - 10 THEN 'running'
            WHEN i % 50 = 0 THEN 'failure'
            ELSE 'success' END,
       :newest - (:runs - i) * 120.0,
       CASE WHEN i > :runs - 5 THEN NULL ELSE :newest - (:runs - i) * 120.0 + 1 END,
       CASE WHEN i > :runs - 10 THEN NULL ELSE :newest - (:runs - i) * 120.0 + 1 + (i % 97) END,
       :newest - (:runs - i) * 120.0,
       CAST('{"team": "' || (CASE WHEN i % 3 = 0 THEN 'risk' ELSE 'data' END) || '"}' AS json),
       CAST('{}' AS json),
       CASE WHEN i % 4 = 0 THEN 'manual' ELSE 'schedule:0 * * * *' END, 1, 0
FROM generate_series(1, :runs) AS i
"""

TASK_RUNS_SQL = """
INSERT INTO task_runs (run_id, task_key, attempt, task_name, status, started_at, ended_at,
                       depends_on)
SELECT r.id, 'step_' || k, 1, 'step_' || k,
       CASE WHEN r.status = 'failure' AND k = :tasks THEN 'failure'
            WHEN r.status IN ('queued') THEN 'pending'
            WHEN r.status = 'running' AND k > 5 THEN 'pending'
            ELSE 'success' END,
       r.started_at + k, r.started_at + k + 0.5,
       CAST(CASE WHEN k = 1 THEN '[]' ELSE '["step_' || (k - 1) || '"]' END AS json)
FROM runs AS r CROSS JOIN generate_series(1, :tasks) AS k
WHERE r.id <> :big
"""

BIG_TASKS_SQL = """
INSERT INTO task_runs (run_id, task_key, attempt, task_name, status, started_at, ended_at,
                       depends_on)
SELECT :big, 'chain_' || c || '.step_' || s, 1, 'step',
       CASE WHEN (c * s) % 997 = 0 THEN 'failure' ELSE 'success' END,
       :start + s, :start + s + 0.8,
       CAST(CASE WHEN s = 1 THEN '[]' ELSE '["chain_' || c || '.step_' || (s - 1) || '"]' END
            AS json)
FROM generate_series(1, :width) AS c CROSS JOIN generate_series(1, :depth) AS s
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    url = sa.make_url(args.url).set(database=DATABASE).render_as_string(hide_password=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        instance = Instance.at(home, url)  # the schema, at the current revision
        with instance.db.write() as conn:
            params = {"runs": RUNS, "jobs": JOBS, "newest": NEWEST}
            conn.execute(sa.text(RUNS_SQL), params)
            conn.execute(
                sa.text(
                    "UPDATE runs SET id = :big, status = 'failure' WHERE id = md5(CAST(:i AS text))"
                ).bindparams(big=BIG_RUN, i=str(RUNS - 20))
            )
            conn.execute(sa.text(TASK_RUNS_SQL), {"tasks": TASKS_PER_RUN, "big": BIG_RUN})
            conn.execute(
                sa.text(BIG_TASKS_SQL),
                {"big": BIG_RUN, "start": NEWEST - 7200, "width": BIG_WIDTH, "depth": BIG_DEPTH},
            )
        with instance.db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
            runs = conn.exec_driver_sql("SELECT count(*) FROM runs").scalar_one()
            tasks = conn.exec_driver_sql("SELECT count(*) FROM task_runs").scalar_one()
        instance.close()
    emit(
        workload="W8 fill",
        runs=runs,
        task_runs=tasks,
        big_run=BIG_RUN,
        seconds=round(time.perf_counter() - started, 1),
        url=url,
    )


if __name__ == "__main__":
    main()
