"""A workspace file's ``Workspace`` object (Dagster's ``Definitions``): the loader serves
its jobs (and the jobs its sensors target), with its resources bound to each, and the
command line loads it the same way."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor import (
    DefinitionError,
    Definitions,
    Instance,
    RunStatus,
    Schedule,
    Workspace,
    WorkspaceError,
    sensor,
    task,
    workflow,
)
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import load_file
from tests.commands import conveyor, home_env

DEFS = """
from conveyor import Definitions, job, sensor, task, workflow


class Database:
    def __init__(self, url):
        self.url = url

    def query(self, sql):
        return f"{self.url}: {sql}"


@task
def query_database(database):
    return database.query("SELECT * FROM users")


@task
def via_context(context):
    return context.resources.database.url


@workflow(resources={"database": None})
def database_job():
    query_database()


@workflow(resources={"database": Database("sqlite://own")})
def own_database():
    query_database()


@job
def body(database):
    return database.url


@workflow
def context_job():
    via_context()


@workflow
def nightly():
    via_context()


@workflow
def watched():
    via_context()


@workflow
def not_served():
    via_context()


@sensor(job=watched, interval="1m")
def new_files():
    return False


defs = Definitions(
    jobs=[database_job, own_database, body, context_job],
    schedules=[(nightly, "0 6 * * *")],
    sensors=[new_files],
    resources={"database": Database("postgres://shared")},
)
"""


def _write(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def defs_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "dagster_defs.py", DEFS)


def test_the_loader_serves_the_workspace_objects_jobs(defs_file: Path) -> None:
    ws = load_file(defs_file)
    assert sorted(ws.jobs) == [
        "body",
        "context_job",
        "database_job",
        "nightly",
        "own_database",
        "watched",
    ]
    assert "not_served" not in ws.jobs
    assert list(ws.sensors) == ["new_files"]
    assert [str(t) for t in ws.jobs["nightly"].triggers] == ["schedule:0 6 * * *"]
    assert ws.places["database_job"].endswith("dagster_defs.py:database_job")


def test_its_resources_are_bound_and_a_jobs_own_win(defs_file: Path, instance: Instance) -> None:
    ws = load_file(defs_file)
    results = {
        name: ws.jobs[name].run(instance=instance)
        for name in ("database_job", "own_database", "body", "context_job", "watched")
    }
    assert results["database_job"].output("query_database") == (
        "postgres://shared: SELECT * FROM users"
    )
    assert results["own_database"].output("query_database") == "sqlite://own: SELECT * FROM users"
    assert results["body"].output("body") == "postgres://shared"
    assert results["context_job"].output("via_context") == "postgres://shared"
    assert results["watched"].output("via_context") == "postgres://shared"


def test_the_command_line_loads_it(defs_file: Path, tmp_path: Path) -> None:
    env = home_env(tmp_path / "home")
    listed = conveyor(env, "jobs", "list", str(defs_file), "--json")
    assert listed.returncode == 0, listed.stderr
    assert "not_served" not in {row["name"] for row in json.loads(listed.stdout)}
    ran = conveyor(env, "run", str(defs_file), "database_job", "--executor", "multiprocess")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shown = conveyor(env, "runs", "list", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [r["status"] for r in json.loads(shown.stdout)] == ["success"]


def test_the_daemon_evaluates_its_sensors_for_the_bound_job(
    tmp_path: Path, instance: Instance
) -> None:
    text = DEFS.replace("def new_files():\n    return False", "def new_files():\n    return True")
    ws = load_file(_write(tmp_path / "sensed_defs.py", text))
    Daemon(ws, instance, launch=lambda *_: None).evaluate_sensors(time.time())
    queued = instance.runs("watched")
    assert [r.status for r in queued] == [RunStatus.QUEUED]
    assert queued[0].job_version == ws.jobs["watched"].version


def test_a_file_without_one_keeps_its_global_jobs(tmp_path: Path) -> None:
    plain = DEFS.split("defs = ")[0]
    ws = load_file(_write(tmp_path / "plain_defs.py", plain))
    assert "not_served" in ws.jobs


def test_a_resource_nobody_provides_is_an_error(tmp_path: Path) -> None:
    missing = DEFS.replace('resources={"database": Database("postgres://shared")}', "resources={}")
    with pytest.raises(
        DefinitionError,
        match=r"job 'database_job' needs resource 'database' from its workspace \(it declares "
        r"it None\), but Workspace\(resources=\.\.\.\) has none; add 'database' there",
    ):
        load_file(_write(tmp_path / "missing_defs.py", missing))


def test_two_workspace_objects_are_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "twice_defs.py", DEFS + "\nother = Definitions(jobs=[body])\n")
    with pytest.raises(
        WorkspaceError, match=r"holds 2 Workspace objects \(defs, other\); keep one"
    ):
        load_file(path)


def test_a_sensor_whose_job_is_nowhere_is_an_error(tmp_path: Path) -> None:
    text = DEFS.replace("@sensor(job=watched", '@sensor(job="gone"')
    with pytest.raises(
        WorkspaceError,
        match=r"sensor 'new_files' of Workspace 'defs' asks for runs of job 'gone', which is "
        r"neither in its jobs= nor defined in the file",
    ):
        load_file(_write(tmp_path / "gone_defs.py", text))


@task
def one() -> int:
    return 1


@workflow
def flow() -> None:
    one()


@workflow(schedule="@daily")
def daily() -> None:
    one()


def _poke() -> bool:
    return True


poke = sensor(job=flow)(_poke)


def test_schedules_take_scheduled_jobs_and_pairs() -> None:
    ws = Workspace(
        jobs=[flow],
        schedules=[daily, (flow, Schedule(at_hours=6, at_minutes=30))],
        sensors=[poke],
    )
    assert sorted(ws.jobs) == ["daily", "flow"]
    assert ws.jobs["flow"].timed_trigger is not None
    assert flow.timed_trigger is None  # the job itself is unchanged
    assert Definitions is Workspace
    assert repr(ws) == "<Workspace 2 jobs, 1 sensor, resources: none>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jobs": flow}, r"Workspace\(jobs=\.\.\.\) must be a list"),
        ({"jobs": [one]}, r"Workspace\(jobs=\.\.\.\): .* is not a job; list @workflow"),
        (
            {"jobs": [flow, flow.to_job(tags={"x": "1"})]},
            r"two jobs are named 'flow'; give one of them another name",
        ),
        ({"schedules": [flow]}, r"job 'flow' has no schedule; give it one"),
        ({"schedules": [(flow, 6)]}, r"the schedule of 'flow' must be a cron string or a Schedule"),
        (
            {"schedules": ["0 6 * * *"]},
            r"must be a job with a schedule or a \(job, schedule\) pair",
        ),
        ({"sensors": [flow]}, r"Workspace\(sensors=\.\.\.\): .* is not a sensor"),
        ({"resources": ["db"]}, r"Workspace\(resources=\.\.\.\): expected a dict"),
    ],
)
def test_bad_workspaces_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Workspace(**kwargs)
