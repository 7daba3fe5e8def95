"""A ``@pipeline_run`` job under the real daemon: hourly intervals into a dlt pipeline (issue 14).

The workspace loads rows stamped every ten minutes, from a local dlt resource whose
``dlt.sources.incremental`` allows external schedulers, into DuckDB. The job covers the
three whole hours before now; the daemon walks them one run per hour, and each run must
load exactly its hour's rows. Then ``conveyor backfill`` of the two hours before that
loads those rows too. The load info is each run's result and is in its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus
from tests.commands import conveyor, home_env
from tests.waiting import wait_until

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("dlt")

WORKSPACE = '''
"""Hourly loads of a local source into DuckDB, the interval given by the scheduler."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import dlt

from conveyor import RunContext, pipeline_run

BASE = datetime.fromisoformat(os.environ["H3_BASE"])  # the job's first hour


@dlt.resource(primary_key="id", write_disposition="append")
def events(
    # initial_value bounds the scheduler's range too (dlt clips it): a day before the data
    stamp=dlt.sources.incremental(
        "stamp", initial_value=BASE - timedelta(days=1), allow_external_schedulers=True
    ),
):
    # every ten minutes from five hours before BASE to two hours after the job's end
    for i in range(-5 * 6, 5 * 6):
        yield {"id": i, "stamp": BASE + timedelta(minutes=10 * i)}


events_pipeline = dlt.pipeline(
    "hourly_events",
    destination=dlt.destinations.duckdb(os.environ["H3_DUCKDB"]),
    pipelines_dir=os.environ["H3_PIPELINES"],
    dataset_name="raw",
)


@pipeline_run(
    events_pipeline,
    trigger="every:1h",
    interval={"start": BASE, "end": BASE + timedelta(hours=3)},
    execute={"concurrency": 1},
)
def load_events(pipeline, context: RunContext):
    context.log.info("loading %s", context.interval)
    return pipeline.run(events())
'''


@pytest.fixture
def daemon_env(tmp_path: Path) -> tuple[dict[str, str], Path, datetime]:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = hour - timedelta(hours=3)
    (tmp_path / "pipelines").mkdir()
    env = home_env(tmp_path / "home")
    env.update(
        {
            "H3_BASE": base.isoformat(),
            "H3_DUCKDB": str(tmp_path / "events.duckdb"),
            "H3_PIPELINES": str(tmp_path / "pipelines"),
            # dlt reads no config from the developer's home in this test
            "DLT_DATA_DIR": str(tmp_path / "dlt_data"),
            "RUNTIME__LOG_LEVEL": "WARNING",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
        }
    )
    (tmp_path / "hourly.py").write_text(WORKSPACE)
    return env, tmp_path, base


def _start_daemon(env: dict[str, str], workspace: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "daemon", str(workspace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _rows_by_load(db: Path) -> dict[str, list[datetime]]:
    """The stamps each dlt load put into the destination, by load id."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("select _dlt_load_id, stamp from raw.events order by stamp").fetchall()
    finally:
        con.close()
    out: dict[str, list[datetime]] = {}
    for load_id, stamp in rows:
        out.setdefault(load_id, []).append(stamp.astimezone(UTC))
    return out


def _check_runs(instance: Instance, db: Path, starts: list[datetime]) -> None:
    """Each run of ``starts`` loaded its own hour, six rows, and stored the load info."""
    by_load = _rows_by_load(db)
    runs = {r.interval_start: r for r in instance.runs("load_events", limit=100)}
    for start in starts:
        run = runs[start]
        assert run.status is RunStatus.SUCCESS
        info = instance.result(run.id, "load_events")
        assert info["pipeline"] == "hourly_events"
        assert info["destination"] == "duckdb"
        assert info["interval"] == [start.isoformat(), (start + timedelta(hours=1)).isoformat()]
        assert info["row_counts"]["events"] == 6
        assert info["failed_jobs"] == 0
        [load_id] = info["loads_ids"]
        assert by_load[load_id] == [start + timedelta(minutes=10 * i) for i in range(6)]


@pytest.mark.timeout(400)
def test_the_daemon_loads_each_hour_and_a_backfill_loads_earlier_hours(
    daemon_env: tuple[dict[str, str], Path, datetime],
) -> None:
    env, tmp, base = daemon_env
    workspace = tmp / "hourly.py"
    db = tmp / "events.duckdb"
    hours = [base + timedelta(hours=n) for n in range(3)]
    instance = Instance.at(tmp / "home")

    def succeeded() -> list[datetime]:
        runs = instance.runs("load_events", limit=100)
        failed = [r for r in runs if r.status is RunStatus.FAILURE]
        assert not failed, f"a run failed: {instance.run(failed[0].id).error}"
        return sorted(
            r.interval_start
            for r in runs
            if r.status is RunStatus.SUCCESS and r.interval_start is not None
        )

    daemon = _start_daemon(env, workspace)
    try:
        wait_until(lambda: succeeded() == hours, 240, "the three hours to load", every=0.5)
        _check_runs(instance, db, hours)
        first = instance.runs("load_events", limit=100)[-1]
        info = instance.result(first.id, "load_events")
        assert info["new_tables"] == ["events"]
        assert set(info["schema_changes"]["events"]) >= {"id", "stamp"}

        earlier = [base - timedelta(hours=2), base - timedelta(hours=1)]
        out = conveyor(
            env,
            "backfill",
            str(workspace),
            "load_events",
            "--start",
            earlier[0].isoformat(),
            "--end",
            base.isoformat(),
        )
        assert out.returncode == 0, out.stderr
        assert "2 intervals, 2 runs queued" in out.stdout
        wait_until(
            lambda: succeeded() == earlier + hours, 240, "the backfill's two hours", every=0.5
        )
    finally:
        _stop(daemon)
    _check_runs(instance, db, earlier + hours)
    # nothing outside the five hours was loaded
    stamps = sorted(s for rows in _rows_by_load(db).values() for s in rows)
    assert stamps == [earlier[0] + timedelta(minutes=10 * i) for i in range(5 * 6)]

    # the load info is in the run's log, and `runs show --json` has the run
    run = next(r for r in instance.runs("load_events", limit=100) if r.interval_start == base)
    logs = conveyor(env, "logs", run.id)
    assert logs.returncode == 0, logs.stderr
    assert "pipeline hourly_events loaded 1 package(s)" in logs.stdout + logs.stderr
    assert "events=6" in logs.stdout + logs.stderr
    instance.close()
