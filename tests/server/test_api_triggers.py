"""Schedules, sensors and webhooks through the API, with a real daemon firing their ticks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.server.test_api import Api, make_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


def test_schedules_list_and_switch(api: Api) -> None:
    listed = {s["job_name"]: s for s in api.get("/api/schedules")}
    assert set(listed) == {"etl", "regional"}
    etl = listed["etl"]
    assert (etl["trigger"], etl["enabled"], etl["timezone"]) == ("every:1h", True, "UTC")
    assert len(etl["next_fire_times"]) == 3
    assert etl["last_tick_at"] is None
    off = api.post("/api/schedules/etl/off")
    assert (off["enabled"], off["next_fire_times"]) == (False, [])
    assert api.get("/api/schedules/etl")["enabled"] is False
    assert api.get("/api/jobs/etl")["name"] == "etl"
    on = api.post("/api/schedules/etl/on")
    assert on["enabled"] is True
    assert len(on["next_fire_times"]) == 3
    assert len(api.get("/api/schedules/etl", count=7)["next_fire_times"]) == 7


def test_schedule_ticks_with_their_runs(api: Api) -> None:
    assert api.get("/api/schedules/etl/ticks") == []
    api.daemon.fire_timed(api.daemon.started + 2 * 3600)
    [tick] = api.get("/api/schedules/etl/ticks")
    assert tick["trigger"] == "every:1h"
    assert tick["run_status"] == "queued"
    run = api.get(f"/api/runs/{tick['run_id']}")
    assert run["trigger"] == "every:1h"
    assert api.get("/api/schedules/etl")["last_tick_at"] == tick["tick_at"]
    assert api.get("/api/schedules/etl/ticks", limit=1) == [tick]


def test_switched_off_schedule_does_not_fire(api: Api) -> None:
    api.post("/api/schedules/etl/off")
    api.daemon.fire_timed(api.daemon.started + 2 * 3600)
    assert api.get("/api/schedules/etl/ticks") == []
    assert api.get("/api/runs", job="etl")["runs"] == []


def test_upcoming_ticks(api: Api) -> None:
    ticks = api.get("/api/schedules/upcoming", hours=3)
    etl = [t for t in ticks if t["job_name"] == "etl"]
    assert len(etl) == 3
    times = [t["at"] for t in ticks]
    assert times == sorted(times)
    until = datetime.now(UTC) + timedelta(hours=3, seconds=5)
    assert all(datetime.fromisoformat(t) <= until for t in times)
    api.post("/api/schedules/etl/off")
    assert all(t["job_name"] != "etl" for t in api.get("/api/schedules/upcoming", hours=3))
    assert "hours" in api.error("GET", "/api/schedules/upcoming", 422, hours=0)


def test_schedule_errors(api: Api) -> None:
    message = api.error("GET", "/api/schedules/report", 404)
    assert "no schedule" in message
    assert "webhook:report-hook" in message
    for method, url in (
        ("GET", "/api/schedules/nope"),
        ("POST", "/api/schedules/nope/on"),
        ("POST", "/api/schedules/report/off"),
        ("GET", "/api/schedules/nope/ticks"),
    ):
        assert api.error(method, url, 404)
    assert "limit" in api.error("GET", "/api/schedules/etl/ticks", 422, limit=0)


def test_sensors_switch_cursor_and_ticks(api: Api) -> None:
    [listed] = api.get("/api/sensors")
    assert listed["name"] == "new_files"
    assert listed["job_name"] == "report"
    assert (listed["interval"], listed["enabled"], listed["cursor"]) == (3600.0, True, None)
    assert listed["description"].startswith("Looks for new files")
    assert api.post("/api/sensors/new_files/off")["enabled"] is False
    assert api.get("/api/sensors/new_files")["enabled"] is False
    assert api.post("/api/sensors/new_files/on")["enabled"] is True
    put = api.client.put("/api/sensors/new_files/cursor", json={"cursor": "go"})
    assert put.status_code == 200
    assert put.json()["cursor"] == "go"
    assert api.get("/api/sensors/new_files/ticks") == []
    api.daemon.evaluate_sensors(api.daemon.clock(), wait=60)
    assert api.get("/api/sensors/new_files")["cursor"] == "gone"
    [tick] = api.get("/api/sensors/new_files/ticks")
    assert tick["trigger"] == "sensor:new_files"
    assert tick["run_status"] == "queued"
    assert api.get(f"/api/runs/{tick['run_id']}")["tags"]["run_key"] == "file-1"


def test_sensor_errors(api: Api) -> None:
    for method, url in (
        ("GET", "/api/sensors/nope"),
        ("POST", "/api/sensors/nope/on"),
        ("POST", "/api/sensors/nope/off"),
        ("GET", "/api/sensors/nope/ticks"),
    ):
        assert "new_files" in api.error(method, url, 404)
    assert "new_files" in api.error("PUT", "/api/sensors/nope/cursor", 404, {"cursor": None})
    assert "cursor" in api.error("PUT", "/api/sensors/new_files/cursor", 422, {"cursor": 5})


def test_webhook_queues_the_hooked_jobs_once(api: Api) -> None:
    answer = api.post("/api/webhooks/report-hook", {"file": "a.csv"}, 202)
    assert answer["jobs"] == ["report"]
    assert answer["path"] == "report-hook"
    [queued] = answer["queued"]
    run = api.get(f"/api/runs/{queued['run_id']}")
    assert run["trigger"] == "webhook:report-hook"
    assert run["tags"]["webhook_payload"] == '{"file": "a.csv"}'
    assert run["tags"]["webhook_call"] == str(answer["call_id"])
    # The daemon reads the same call later, and queues nothing more for it.
    api.daemon.fire_webhooks(api.daemon.clock())
    assert len(api.get("/api/runs", job="report")["runs"]) == 1
    api.start_queued()
    assert api.get(f"/api/runs/{queued['run_id']}")["status"] == "success"
    assert len(api.post("/api/webhooks/report-hook", None, 202)["queued"]) == 1


def test_webhook_errors(api: Api) -> None:
    message = api.error("POST", "/api/webhooks/nope", 404, {})
    assert "webhook:nope" in message
    assert "report-hook" in message
    assert api.error("POST", "/api/webhooks/report-hook", 422, [1, 2])
    assert api.get("/api/runs")["runs"] == []


def test_a_job_a_sensor_watches_lists_the_sensor_among_its_triggers(api: Api) -> None:
    [report] = [j for j in api.get("/api/jobs") if j["name"] == "report"]
    assert "sensor:new_files" in report["triggers"]
    triggers = api.get("/api/jobs/report/triggers")
    [watching] = [t for t in triggers if t["type"] == "sensor"]
    assert watching["expr"] == "new_files"
    assert watching["description"] == "sensor new_files, evaluated every 1h 00m"
    assert watching["next_fire_times"] == []
    detail = api.get("/api/jobs/report")
    assert "sensor:new_files" in [t["trigger"] for t in detail["trigger_details"]]
