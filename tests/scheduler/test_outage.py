"""The daemon rides out a database outage: one line when it starts, one when it ends.

The outage is a TCP proxy between a real daemon process and the real
PostgreSQL server, cut and restored (the shared server itself is never stopped).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor import Instance, RunStatus
from conveyor.scheduler.outage import PassFailures, unreachable
from conveyor.workspace import load_file
from tests.tcpproxy import TcpProxy
from tests.waiting import wait_until

JOBS = Path(__file__).parent / "jobs.py"
OUTAGE = 15.0


# -- telling an outage from a bug, with errors the real drivers raise -------------------------


def _error(url: str, sql: str = "SELECT 1") -> Exception:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    except Exception as e:
        return e
    finally:
        engine.dispose()
    raise AssertionError(f"{sql!r} on {url} did not fail")


def test_a_refused_connection_is_an_outage(pg_server_url: str) -> None:
    url = sa.engine.make_url(pg_server_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxy.cut()
        reason = unreachable(_error(proxy.url_for(pg_server_url)))
    assert reason is not None
    assert "Connection refused" in reason
    assert "\n" not in reason


def test_a_connection_lost_mid_query_is_an_outage(pg_server_url: str) -> None:
    url = sa.engine.make_url(pg_server_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxy.kill_connections_every(0.05)
        error = _error(proxy.url_for(pg_server_url), "SELECT pg_sleep(3)")
    assert unreachable(error) is not None


def test_wrapped_outages_count_and_answers_from_the_database_do_not(
    pg_server_url: str, tmp_path: Path
) -> None:
    from conveyor.errors import StorageError

    refused = _error("postgresql+psycopg://postgres@127.0.0.1:1/test")
    wrapped = StorageError("cannot open the database")
    wrapped.__cause__ = refused  # as `raise StorageError(...) from refused` does
    assert unreachable(wrapped) is not None
    assert unreachable(_error(f"sqlite:///{tmp_path}/missing/dir/x.db")) is not None
    # The database answered: a bug (or a bad request), not an outage.
    assert unreachable(_error(pg_server_url, "SELECT * FROM no_such_table")) is None
    assert unreachable(_error(pg_server_url, "SELECT 1/0")) is None
    assert unreachable(_error(f"sqlite:///{tmp_path}/x.db", "SELECT * FROM nope")) is None
    assert unreachable(KeyError("x")) is None


def test_an_outage_logs_twice_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = logging.getLogger("conveyor.test_outage")
    failures = PassFailures("postgresql://db/x", 0.1, log, clock=lambda: now[0])
    refused = _error("postgresql+psycopg://postgres@127.0.0.1:1/test")
    with caplog.at_level(logging.INFO, logger=log.name):
        waits = []
        for _ in range(10):
            wait = failures.failed(refused)
            assert wait is not None
            waits.append(wait)
            now[0] += wait
        failures.passed()
        failures.passed()
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("database postgresql://db/x is unreachable: connection failed")
    assert messages[1] == f"database reachable again after {sum(waits):.1f}s"


def test_a_repeating_bug_logs_its_traceback_once_then_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = logging.getLogger("conveyor.test_outage")
    failures = PassFailures("db", 0.1, log, clock=lambda: now[0])

    def bug(key: str) -> Exception:
        known: dict[str, int] = {}
        try:
            known[key]
        except KeyError as e:
            return e
        raise AssertionError("unreachable")

    with caplog.at_level(logging.INFO, logger=log.name):
        for i in range(1200):  # two minutes of passes
            assert failures.failed(bug(f"run-{i}")) is None
            now[0] += 0.1
        try:
            raise ValueError("another bug")
        except ValueError as e:
            failures.failed(e)
    tracebacks = [r for r in caplog.records if r.exc_info]
    counts = [r.getMessage() for r in caplog.records if not r.exc_info]
    assert [type(r.exc_info[1]) for r in tracebacks if r.exc_info] == [KeyError, ValueError]
    assert len(counts) == 1
    assert counts[0].startswith("scheduler pass failed 600 more times in 60s")
    assert "KeyError: 'run-600'" in counts[0]


# -- a real daemon process through a proxy that is cut ---------------------------------------


@pytest.fixture
def fresh_pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own: other tests' queued runs must not reach this daemon."""
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    name = f"conveyor_outage_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(pg_server_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _queue(instance: Instance, job_name: str) -> str:
    ws = load_file(JOBS)
    job = ws.job(job_name)
    return instance.run_store.create(
        job_name=job.name,
        job_version=job.version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": job.name},
    ).id


def _logged_at(line: str) -> float:
    """When the daemon logged ``line`` (its format: ``%(asctime)s %(levelname)s ...``)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_daemon_rides_out_a_database_outage(fresh_pg_url: str, tmp_path: Path) -> None:
    url = sa.engine.make_url(fresh_pg_url)
    instance = Instance.at(tmp_path / "home", database_url=fresh_pg_url)  # not through the proxy
    stderr_path = tmp_path / "daemon.stderr"
    with (
        TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy,
        open(stderr_path, "wb") as stderr,
    ):
        env = {
            **os.environ,
            "CONVEYOR_DATABASE_URL": proxy.url_for(fresh_pg_url),
            "CONVEYOR_HOME": str(tmp_path / "home"),
        }
        daemon = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "daemon", str(JOBS)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            before = _queue(instance, "upstream")
            wait_until(
                lambda: instance.run(before).status is RunStatus.SUCCESS,
                30,
                "a run before the outage to succeed",
            )

            proxy.cut()
            cut_at = time.monotonic()
            during = _queue(instance, "upstream")  # the daemon cannot see it yet
            wait_until(
                lambda: b"is unreachable" in stderr_path.read_bytes(), 5, "the outage to be logged"
            )
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage itself
            assert instance.run(during).status is RunStatus.QUEUED
            proxy.restore()
            restored_at = time.time()

            wait_until(
                lambda: b"reachable again" in stderr_path.read_bytes(),
                15,
                "the daemon to see the database back",
            )
            wait_until(
                lambda: instance.run(during).status is RunStatus.SUCCESS,
                30,
                "the run queued during the outage to succeed",
            )
            # and the chained trigger of the run that ended after the outage fired
            wait_until(
                lambda: any(
                    r.tags.get("upstream_run") == during and r.status is RunStatus.SUCCESS
                    for r in instance.runs("downstream")
                ),
                30,
                "the chained run after the outage to succeed",
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
            instance.close()

    text = stderr_path.read_text()
    assert "Traceback" not in text, text
    down = [line for line in text.splitlines() if "is unreachable" in line]
    back = [line for line in text.splitlines() if "reachable again" in line]
    assert len(down) == 1, text
    assert len(back) == 1, text
    assert "WARNING" in down[0]
    assert f"127.0.0.1:{proxy.port}/{url.database}" in down[0]  # names the database
    assert "Connection refused" in down[0] or "closed the connection" in down[0]
    took = float(re.search(r"after ([0-9.]+)s", back[0]).group(1))  # type: ignore[union-attr]
    assert OUTAGE - 1 <= took <= OUTAGE + 15
    # Nothing else was logged while the database was away (what a pass logs, it logs
    # before the pass ends and the daemon says the database is back).
    lines = text.splitlines()
    meanwhile = lines[lines.index(down[0]) + 1 : lines.index(back[0])]
    assert all(_logged_at(line) >= restored_at - 0.01 for line in meanwhile), text
