"""``/api/pools`` (limits and holders) and ``/api/daemon`` (the daemons' health)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_api import Api, make_api
from tests.waiting import wait_until


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


def test_pools_list_set_and_delete(api: Api) -> None:
    pools = {p["name"]: p for p in api.get("/api/pools")}
    assert pools["db"] == {"name": "db", "limit": None, "holders": [], "jobs": ["etl"]}
    assert pools["slowpool"]["jobs"] == ["slow"]
    put = api.client.put("/api/pools/db", json={"limit": 2})
    assert put.status_code == 200
    assert put.json()["limit"] == 2
    assert api.get("/api/pools/db")["limit"] == 2
    assert api.client.put("/api/pools/other", json={"limit": 1}).json()["jobs"] == []
    assert [p["name"] for p in api.get("/api/pools")] == ["db", "other", "slowpool"]
    assert api.client.delete("/api/pools/db").status_code == 204
    assert api.get("/api/pools/db")["limit"] is None
    assert "no pool 'db'" in api.error("DELETE", "/api/pools/db", 404)


def test_pool_errors(api: Api) -> None:
    assert "PUT /api/pools/nope" in api.error("GET", "/api/pools/nope", 404)
    assert "limit" in api.error("PUT", "/api/pools/db", 422, {"limit": 0})
    assert "limit" in api.error("PUT", "/api/pools/db", 422, {})


def test_pool_holders_while_a_run_holds_a_slot(api: Api) -> None:
    api.client.put("/api/pools/slowpool", json={"limit": 1})
    rid = api.launch("slow")
    worker = threading.Thread(target=api.start_queued)
    worker.start()
    try:
        wait_until(lambda: api.get("/api/pools/slowpool")["holders"] == [rid], 60, "the run's slot")
    finally:
        (api.folder / "gate").touch()
        worker.join(60)
    assert api.get(f"/api/runs/{rid}")["status"] == "success"
    assert api.get("/api/pools/slowpool")["holders"] == []


def test_daemon_health(api: Api) -> None:
    none = api.get("/api/daemon")
    assert none["healthy"] is False
    assert "conveyor daemon" in none["message"]
    assert none["daemons"] == []
    status = api.instance.daemon_status
    status.beat(
        "d1", host="here", pid=1, started_at=time.time() - 60, pass_seconds=0.01, error=None
    )
    ok = api.get("/api/daemon")
    assert ok["healthy"] is True
    assert ok["message"] == "1 daemon running"
    [daemon] = ok["daemons"]
    assert (daemon["daemon_id"], daemon["alive"], daemon["failing"]) == ("d1", True, False)
    assert daemon["last_pass_seconds"] == 0.01
    assert daemon["passes"] == 1
    status.beat("d1", host="here", pid=1, started_at=time.time() - 60, pass_seconds=0.2, error="x")
    failing = api.get("/api/daemon")
    assert failing["healthy"] is False
    assert "x" in failing["message"]
    assert failing["daemons"][0]["last_error"] == "x"
    long_ago = time.time() - 3600
    status.beat(
        "d1", host="here", pid=1, started_at=long_ago, pass_seconds=0.1, error=None, at=long_ago
    )
    gone = api.get("/api/daemon")
    assert gone["healthy"] is False
    assert gone["daemons"][0]["alive"] is False
    two_days_ago = time.time() - 2 * 24 * 3600
    status.beat(
        "d2",
        host="there",
        pid=2,
        started_at=two_days_ago,
        pass_seconds=0.1,
        error=None,
        at=two_days_ago,
    )
    # a daemon silent for more than a day (killed long ago) is no longer listed
    assert [d["daemon_id"] for d in api.get("/api/daemon")["daemons"]] == ["d1"]
