"""``/api/runs``: launch, list with filters and cursors, one run, its tasks and events,
cancel and rerun, each run executed for real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_api import Api, make_api
from tests.waiting import wait_until


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


FAIL = {"tasks": {"risky": {"config": {"fail": True}}}}
PASS = {"tasks": {"risky": {"config": {"fail": False}}}}


def test_launch_queues_and_the_daemon_runs_it(api: Api) -> None:
    rid = api.launch("etl", {"tasks": {"extract": {"config": {"limit": 4}}}}, tags={"who": "me"})
    assert api.get(f"/api/runs/{rid}")["status"] == "queued"
    api.start_queued()
    run = api.get(f"/api/runs/{rid[:8]}")
    assert run["status"] == "success"
    assert run["trigger"] == "manual"
    assert run["tags"] == {"team": "data", "who": "me"}
    assert run["run_config"] == {"tasks": {"extract": {"config": {"limit": 4}}}}
    assert {t["key"]: t["status"] for t in run["tasks"]} == dict.fromkeys(
        ["extract", "double", "square", "total"], "success"
    )
    assert run["parent"] is None
    assert run["children"] == []
    assert api.get(f"/api/runs/{rid}/tasks")[0]["attempts"][0]["status"] == "success"


def test_bad_config_is_422_naming_the_field_and_records_nothing(api: Api) -> None:
    bad = {"job_name": "etl", "run_config": {"tasks": {"extract": {"config": {"limit": "x"}}}}}
    message = api.error("POST", "/api/runs", 422, bad)
    assert message.startswith("tasks.extract.config.limit:")
    unknown = {"job_name": "etl", "run_config": {"tasks": {"extract": {"config": {"lmit": 1}}}}}
    assert "tasks.extract.config.lmit" in api.error("POST", "/api/runs", 422, unknown)
    assert api.get("/api/runs")["runs"] == []


def test_launch_checks_job_tags_partition_interval_and_selection(api: Api) -> None:
    assert "no job 'nope'" in api.error("POST", "/api/runs", 404, {"job_name": "nope"})
    body = {"job_name": "etl", "tags": {"conveyor/x": "1"}}
    assert "tags.conveyor/x" in api.error("POST", "/api/runs", 422, body)
    assert "partition" in api.error(
        "POST", "/api/runs", 422, {"job_name": "etl", "partition": "us"}
    )
    body = {"job_name": "regional", "partition": "mars"}
    assert "mars" in api.error("POST", "/api/runs", 422, body)
    body = {"job_name": "etl", "interval": {"start": "2026-01-02", "end": "2026-01-01"}}
    assert "before" in api.error("POST", "/api/runs", 422, body)
    body = {"job_name": "etl", "interval": {"start": "yesterday", "end": "2026-01-01"}}
    assert "yesterday" in api.error("POST", "/api/runs", 422, body)
    assert "selection" in api.error(
        "POST", "/api/runs", 422, {"job_name": "report", "selection": ["x"]}
    )
    assert "job_name" in api.error("POST", "/api/runs", 422, {"run_config": {}})
    assert api.get("/api/runs")["runs"] == []


def test_launch_with_partition_interval_and_selection(api: Api) -> None:
    run = api.run("regional", partition="eu")
    assert (run["status"], run["partition"]) == ("success", "eu")
    span = {"start": "2026-01-01", "end": "2026-01-02"}
    run = api.run("etl", interval=span, selection=["extract", "double"])
    assert run["interval_start"].startswith("2026-01-01")
    assert run["selection"] == ["extract", "double"]
    assert {t["key"] for t in run["tasks"]} == {"extract", "double"}


def test_list_filters_and_pages(api: Api) -> None:
    ok = [api.run("etl")["id"] for _ in range(3)]
    failed = api.run("flaky", FAIL)["id"]
    api.run("regional", partition="us", tags={"owner": "ana"})
    everything = api.get("/api/runs")["runs"]
    assert len(everything) == 5
    assert [r["id"] for r in api.get("/api/runs", job="etl")["runs"]] == ok[::-1]
    assert [r["id"] for r in api.get("/api/runs", status="failure")["runs"]] == [failed]
    both = api.get("/api/runs", job=["etl", "flaky"], status=["success", "failure"])["runs"]
    assert len(both) == 4
    assert [r["job_name"] for r in api.get("/api/runs", tag="owner=ana")["runs"]] == ["regional"]
    assert len(api.get("/api/runs", trigger="manual")["runs"]) == 5
    assert api.get("/api/runs", trigger="every:1h")["runs"] == []
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    assert len(api.get("/api/runs", created_after=earlier, created_before=later)["runs"]) == 5
    assert api.get("/api/runs", created_after=later)["runs"] == []
    assert len(api.get("/api/runs", started_before=later)["runs"]) == 5
    assert api.get("/api/runs", started_before=earlier)["runs"] == []
    # Pages of two, in order, until the last has no cursor.
    seen, cursor = [], None
    while True:
        page = api.get("/api/runs", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in everything]
    counts = api.get("/api/runs/counts", job="flaky")
    assert counts["failure"] == 1
    assert counts["success"] == 0
    assert api.get("/api/runs/counts")["success"] == 4


def test_list_refuses_bad_filters(api: Api) -> None:
    assert "cursor" in api.error("GET", "/api/runs", 422, cursor="not-a-cursor")
    assert "status 'done'" in api.error("GET", "/api/runs", 422, status="done")
    assert "KEY=VALUE" in api.error("GET", "/api/runs", 422, tag="team")
    message = api.error(
        "GET", "/api/runs", 422, created_after="2026-02-01", created_before="2026-01-01"
    )
    assert "created_after must be before created_before" in message
    assert "started_after" in api.error("GET", "/api/runs", 422, started_after="soon")
    assert "limit" in api.error("GET", "/api/runs", 422, limit=0)
    assert "status" in api.error("GET", "/api/runs/counts", 422, status="nope")


def test_events_of_a_failed_run_and_the_error_traceback(api: Api) -> None:
    run = api.run("flaky", FAIL)
    assert run["status"] == "failure"
    risky = next(t for t in run["tasks"] if t["key"] == "risky")
    attempt = risky["attempts"][-1]
    assert attempt["error_type"] == "builtins.ValueError"
    assert "told to fail" in attempt["error_message"]
    assert "Traceback" in attempt["error_traceback"]
    events = api.get(f"/api/runs/{run['id']}/events")
    assert events
    assert all(e["message"] for e in events)
    kinds = {e["kind"] for e in events}
    some = next(iter(kinds))
    assert {e["kind"] for e in api.get(f"/api/runs/{run['id']}/events", kind=some)} == {some}


def test_unknown_runs_are_404(api: Api) -> None:
    for rid in ("nope", "abcdef12", "0" * 32, "a" * 40):
        for url in ("", "/tasks", "/events"):
            assert "no run" in api.error("GET", f"/api/runs/{rid}{url}", 404)
        assert "no run" in api.error("POST", f"/api/runs/{rid}/cancel", 404)
        assert "no run" in api.error("POST", f"/api/runs/{rid}/rerun", 404, {})


def test_cancel(api: Api) -> None:
    rid = api.launch("etl")
    assert api.post(f"/api/runs/{rid}/cancel") == {"run_id": rid, "status": "canceled"}
    api.start_queued()
    assert api.get(f"/api/runs/{rid}")["status"] == "canceled"
    done = api.run("etl")["id"]
    assert api.post(f"/api/runs/{done}/cancel")["status"] == "success"


def test_rerun_from_failure_with_new_config_reuses_what_succeeded(api: Api) -> None:
    parent = api.run("flaky", FAIL)
    assert parent["status"] == "failure"
    child = api.post(f"/api/runs/{parent['id']}/rerun", {"run_config": PASS}, 201)
    assert child["status"] == "queued"
    assert child["parent_run_id"] == parent["id"]
    assert child["root_run_id"] == parent["id"]
    assert child["tags"]["conveyor/rerun"] == "failure"
    api.start_queued()
    run = api.get(f"/api/runs/{child['id']}")
    assert run["status"] == "success"
    statuses = {t["key"]: t["status"] for t in run["tasks"]}
    assert statuses == {"prepare": "reused", "boxed": "reused", "risky": "success"}
    assert run["parent"]["id"] == parent["id"]
    assert [c["id"] for c in api.get(f"/api/runs/{parent['id']}")["children"]] == [child["id"]]
    # A rerun of the rerun keeps the first run as its root.
    again = api.post(f"/api/runs/{child['id']}/rerun", {"full": True}, 201)
    assert again["root_run_id"] == parent["id"]


def test_full_rerun_runs_everything_again(api: Api) -> None:
    parent = api.run("flaky", PASS)
    child = api.post(f"/api/runs/{parent['id']}/rerun", {"full": True}, 201)
    assert child["tags"]["conveyor/rerun"] == "full"
    api.start_queued()
    run = api.get(f"/api/runs/{child['id']}")
    assert {t["status"] for t in run["tasks"]} == {"success"}
    assert run["run_config"] == PASS


def test_rerun_refusals(api: Api) -> None:
    ok = api.run("flaky", PASS)["id"]
    nothing = api.error("POST", f"/api/runs/{ok}/rerun", 409, {})
    assert "nothing to rerun from failure" in nothing
    assert 'send {"full": true} to run every task again' in nothing
    assert "full=True" not in nothing
    bad = {"run_config": {"tasks": {"risky": {"config": {"fail": "maybe"}}}}}
    assert api.error("POST", f"/api/runs/{ok}/rerun", 422, bad).startswith(
        "tasks.risky.config.fail:"
    )
    queued = api.launch("flaky")
    still = api.error("POST", f"/api/runs/{queued}/rerun", 409, {"full": True})
    assert "still queued" in still
    assert f"POST /api/runs/{queued[:8]}/cancel" in still


@pytest.fixture
def worker_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """An ``Api`` whose daemon starts each run in a run worker process, as in production."""
    from conveyor.execution.runner import start
    from conveyor.scheduler.daemon import Daemon

    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    for made in make_api(tmp_path):
        assert made.state.workspace.workspace is not None
        made.daemon = Daemon(made.state.workspace.workspace, made.instance, launch=start)
        yield made
        made.daemon.reap(wait=30)


def run_in_a_worker(api: Api, rid: str) -> dict[str, Any]:
    api.daemon.launch_queued()
    wait_until(
        lambda: api.get(f"/api/runs/{rid}")["status"] in ("success", "failure"),
        120,
        f"run {rid[:8]} to end in its worker",
    )
    run: dict[str, Any] = api.get(f"/api/runs/{rid}")
    return run


@pytest.mark.slow
def test_rerun_from_failure_in_a_run_worker_process(worker_api: Api) -> None:
    """The queued rerun goes through the real run worker (``runner._execute``), which reuses
    the parent's succeeded tasks for a run tagged ``conveyor/rerun=failure``."""
    parent = run_in_a_worker(worker_api, worker_api.launch("flaky", FAIL))
    assert parent["status"] == "failure"
    child = worker_api.post(f"/api/runs/{parent['id']}/rerun", {"run_config": PASS}, 201)
    run = run_in_a_worker(worker_api, child["id"])
    assert run["status"] == "success"
    statuses = {t["key"]: t["status"] for t in run["tasks"]}
    assert statuses == {"prepare": "reused", "boxed": "reused", "risky": "success"}
