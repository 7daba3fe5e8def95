"""The REST API on a real instance and a real workspace file: shared fixtures, and the
jobs routes.

Runs launched through the API are executed for real: ``Api.start_queued`` has a
scheduler daemon start the queued runs, executing each in this process.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.execution.launch import execute_run
from conveyor.execution.runner import reuse_for
from conveyor.scheduler.daemon import Daemon
from conveyor.server.app import create_app
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.storage.run_queries import RunFilter
from conveyor.workspace import Workspace, load_file

with warnings.catch_warnings():
    # Starlette warns that httpx is deprecated in favour of httpx2 (as a UserWarning, which
    # the project's filter, written for a DeprecationWarning, does not catch).
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = '''
import time
from pathlib import Path

from conveyor import (
    Config,
    RetryPolicy,
    RunRequest,
    StaticPartitions,
    job,
    sensor,
    task,
    workflow,
)

# The live-log test creates this file to let `follow_me` finish.
GATE = Path(__file__).with_name("gate")


class Source(Config):
    """Where to read from."""

    url: str = "http://example"
    limit: int = 3


class Fail(Config):
    fail: bool = False


class Box:
    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return f"Box({self.n})"


@task(retry=RetryPolicy(max_retries=2), timeout="1m", cpu=1, memory="64m", pool="db")
def extract(config: Source) -> list[int]:
    """Read the rows."""
    print(f"reading {config.url}")
    return list(range(config.limit))


@task
def double(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task
def square(rows: list[int]) -> list[int]:
    return [r * r for r in rows]


@task
def total(a: list[int], b: list[int]) -> int:
    return sum(a) + sum(b)


@workflow(trigger="every:1h", tags={"team": "data"})
def etl():
    """Extract, fan out, add up."""
    rows = extract()
    total(double(rows), square(rows))


@task
def prepare() -> str:
    return "ready"


@task
def risky(value: str, config: Fail) -> str:
    if config.fail:
        raise ValueError("told to fail")
    return value.upper()


@task
def boxed() -> Box:
    return Box(7)


@workflow
def flaky():
    risky(prepare())
    boxed()


@job(trigger=["job.success:etl", "webhook:report-hook"])
def report(context) -> None:
    print("report")


@task
def follow_me() -> int:
    print("first line", flush=True)
    while not GATE.exists():
        time.sleep(0.02)
    print("second line", flush=True)
    return 2


@workflow(pool="slowpool")
def slow():
    follow_me()


@job(partitions=StaticPartitions(["us", "eu"]), trigger="every:1d")
def regional(context) -> None:
    print(context.partition)


@sensor(job=report, interval="1h")
def new_files(context):
    """Looks for new files: one run when its cursor says go."""
    if context.cursor == "go":
        context.cursor = "gone"
        return RunRequest(run_key="file-1")
    return None
'''


@dataclass
class Api:
    """A client of the app, and a daemon that executes the queued runs in this process."""

    client: TestClient
    state: ServerState
    daemon: Daemon
    folder: Path

    @property
    def instance(self) -> Instance:
        return self.state.instance

    def start_queued(self) -> None:
        """Start (and so execute, here) the queued runs, pass after pass, until none is
        left that can start (a job runs one run at a time)."""
        for _ in range(100):
            self.daemon.launch_queued()
            if not self.instance.run_status_counts(RunFilter(statuses=("queued",)))["queued"]:
                return

    def get(self, url: str, code: int = 200, **params: Any) -> Any:
        response = self.client.get(url, params=params)
        assert response.status_code == code, response.text
        return response.json()

    def post(self, url: str, body: Any = None, code: int = 200) -> Any:
        response = self.client.post(url, json=body)
        assert response.status_code == code, response.text
        return response.json()

    def error(self, method: str, url: str, code: int, body: Any = None, **params: Any) -> str:
        """The message of an error answer, checked to be ``code`` with a message."""
        response = self.client.request(method, url, json=body, params=params)
        assert response.status_code == code, response.text
        message = response.json()["error"]
        assert isinstance(message, str)
        assert message
        return message

    def launch(self, job: str, run_config: dict[str, Any] | None = None, **more: Any) -> str:
        run = self.post("/api/runs", {"job_name": job, "run_config": run_config or {}, **more}, 201)
        return str(run["id"])

    def run(
        self, job: str, run_config: dict[str, Any] | None = None, **more: Any
    ) -> dict[str, Any]:
        """Launch a run through the API, execute it, and return it as the API shows it."""
        rid = self.launch(job, run_config, **more)
        self.start_queued()
        run: dict[str, Any] = self.get(f"/api/runs/{rid}")
        return run


def executing_here(ws: Workspace) -> Any:
    def launch(run_id: str, instance: Instance) -> None:
        run = instance.run(run_id)
        job = ws.jobs[run.job_name]
        execute_run(run_id, job, instance=instance, reuse=reuse_for(run, job, instance))

    return launch


def make_api(folder: Path, source: str = WORKSPACE) -> Iterator[Api]:
    path = folder / "pipelines.py"
    path.write_text(textwrap.dedent(source))
    instance = Instance.at(folder / "home")
    holder = WorkspaceHolder(loader=lambda: load_file(path), description=str(path))
    assert holder.reload() is None
    assert holder.workspace is not None
    state = ServerState(instance=instance, workspace=holder)
    daemon = Daemon(holder.workspace, instance, launch=executing_here(holder.workspace))
    with TestClient(create_app(state)) as client:
        yield Api(client, state, daemon, folder)
    instance.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


# -- health and jobs -------------------------------------------------------------------------


def test_health_answers(api: Api) -> None:
    assert api.get("/api/health")["status"] == "ok"


def test_unknown_route_names_the_docs(api: Api) -> None:
    assert "/docs" in api.error("GET", "/api/nothing-here", 404)


def test_jobs_list_with_last_run_and_durations(api: Api) -> None:
    api.run("etl")
    jobs = {j["name"]: j for j in api.get("/api/jobs")}
    assert set(jobs) == {"etl", "flaky", "report", "slow", "regional"}
    etl = jobs["etl"]
    assert etl["kind"] == "workflow"
    assert etl["triggers"] == ["every:1h"]
    assert etl["last_run"]["status"] == "success"
    assert len(etl["recent_durations"]) == 1
    assert jobs["report"]["last_run"] is None


def test_jobs_search_and_tags(api: Api) -> None:
    assert [j["name"] for j in api.get("/api/jobs", q="FAN OUT")] == ["etl"]
    assert [j["name"] for j in api.get("/api/jobs", tag="team=data")] == ["etl"]
    assert [j["name"] for j in api.get("/api/jobs", tag="team")] == ["etl"]
    assert api.get("/api/jobs", tag="team=ops") == []


def test_job_detail(api: Api) -> None:
    etl = api.get("/api/jobs/etl")
    assert etl["place"].endswith("pipelines.py:etl")
    assert etl["downstream"] == ["report"]
    assert etl["upstream"] == []
    assert api.get("/api/jobs/report")["upstream"] == ["etl"]
    [timed] = etl["trigger_details"]
    assert timed["trigger"] == "every:1h"
    assert len(timed["next_fire_times"]) == 3
    assert etl["execute"]["concurrency"] == 1
    assert api.get("/api/jobs/regional")["partitions"] == ["us", "eu"]


def test_job_graph_has_task_options_and_edges(api: Api) -> None:
    graph = api.get("/api/jobs/etl/graph")
    nodes = {n["key"]: n for n in graph["nodes"]}
    assert set(nodes) == {"extract", "double", "square", "total"}
    opts = nodes["extract"]["options"]
    assert (opts["retries"], opts["timeout"], opts["cpu"], opts["pool"]) == (2, 60.0, 1.0, "db")
    assert opts["memory"] == 64_000_000
    assert nodes["extract"]["takes_config"] is True
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert edges == {
        ("extract", "double"),
        ("extract", "square"),
        ("double", "total"),
        ("square", "total"),
    }
    body = api.get("/api/jobs/report/graph")
    assert [n["key"] for n in body["nodes"]] == ["report"]
    assert body["edges"] == []


def test_job_config_schema(api: Api) -> None:
    schema = api.get("/api/jobs/etl/config-schema")
    extract = schema["properties"]["tasks"]["properties"]["extract"]["properties"]["config"]
    assert extract["properties"]["limit"] == {"default": 3, "title": "Limit", "type": "integer"}
    assert extract["description"] == "Where to read from."
    assert schema["additionalProperties"] is False
    assert api.get("/api/jobs/report/config-schema")["properties"] == {}


def test_job_triggers(api: Api) -> None:
    triggers = api.get("/api/jobs/report/triggers")
    assert [t["trigger"] for t in triggers] == [
        "job.success:etl",
        "webhook:report-hook",
        "sensor:new_files",
    ]
    assert all(t["next_fire_times"] == [] for t in triggers)
    assert len(api.get("/api/jobs/etl/triggers", count=5)[0]["next_fire_times"]) == 5


def test_config_check_names_the_field(api: Api) -> None:
    ok = api.post("/api/jobs/etl/config-check", {"tasks": {"extract": {"config": {"limit": 5}}}})
    assert ok["valid"] is True
    bad = {"tasks": {"extract": {"config": {"limit": "many"}}}}
    message = api.error("POST", "/api/jobs/etl/config-check", 422, bad)
    assert message.startswith("tasks.extract.config.limit:")


def test_unknown_job_is_404_naming_the_jobs(api: Api) -> None:
    for url in ("", "/graph", "/config-schema", "/triggers"):
        message = api.error("GET", f"/api/jobs/nope{url}", 404)
        assert "no job 'nope'" in message
        assert "etl" in message
    assert "no job 'nope'" in api.error("POST", "/api/jobs/nope/config-check", 404, {})


def test_bad_query_values_are_422(api: Api) -> None:
    assert "count" in api.error("GET", "/api/jobs/etl/triggers", 422, count=0)


def test_every_api_route_goes_through_authorize() -> None:
    from fastapi.routing import APIRoute

    from conveyor.server.api import routers

    def checks(dependant: Any) -> bool:
        return any(
            getattr(d.call, "__qualname__", "") == "allow.<locals>.dependency" or checks(d)
            for d in dependant.dependencies
        )

    routes = [r for router in routers() for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 40
    unchecked = [f"{sorted(r.methods)} {r.path}" for r in routes if not checks(r.dependant)]
    assert unchecked == []
