"""``/api/backfills``: create, watch the progress per interval and partition, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_api import Api, make_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


SPAN = {"start": "2026-01-01", "end": "2026-01-03"}


def test_backfill_queues_each_interval_and_partition_and_runs_them(api: Api) -> None:
    made = api.post("/api/backfills", {"job_name": "regional", **SPAN}, 201)
    assert made["job_name"] == "regional"
    assert made["status"] == "requested"
    assert made["run_count"] == 4
    assert made["progress"]["queued"] == 4
    slices = {(r["interval_start"][:10], r["partition"]) for r in made["runs"]}
    assert slices == {(d, k) for d in ("2026-01-01", "2026-01-02") for k in ("us", "eu")}
    assert made["spec"]["queued"] == 4
    api.start_queued()
    done = api.get(f"/api/backfills/{made['id']}")
    assert done["status"] == "done"
    assert done["progress"]["success"] == 4
    assert {r["status"] for r in done["runs"]} == {"success"}
    # Again: everything is covered, so nothing is queued.
    again = api.post("/api/backfills", {"job_name": "regional", **SPAN}, 201)
    assert again["run_count"] == 0
    assert again["spec"]["skipped"] == 4
    listed = api.get("/api/backfills")
    assert [b["id"] for b in listed] == [again["id"], made["id"]]
    assert api.get("/api/backfills", job="etl") == []
    assert len(api.get("/api/backfills", job="regional", limit=1)) == 1


def test_backfill_of_some_partitions(api: Api) -> None:
    body = {"job_name": "regional", **SPAN, "partitions": ["eu"]}
    made = api.post("/api/backfills", body, 201)
    assert {r["partition"] for r in made["runs"]} == {"eu"}
    assert made["run_count"] == 2


def test_cancel_a_backfill_cancels_its_queued_runs(api: Api) -> None:
    made = api.post(
        "/api/backfills",
        {"job_name": "etl", "start": "2026-01-01T00:00", "end": "2026-01-01T03:00"},
        201,
    )
    assert made["run_count"] == 3
    canceled = api.post(f"/api/backfills/{made['id']}/cancel")
    assert canceled == {"backfill_id": made["id"], "status": "canceled", "runs_canceled": 3}
    assert api.get(f"/api/backfills/{made['id']}")["progress"]["canceled"] == 3
    assert api.post(f"/api/backfills/{made['id']}/cancel")["runs_canceled"] == 0


def test_backfill_errors(api: Api) -> None:
    assert "no job 'nope'" in api.error("POST", "/api/backfills", 404, {"job_name": "nope", **SPAN})
    message = api.error("POST", "/api/backfills", 422, {"job_name": "report", **SPAN})
    assert "no schedule" in message
    backwards = {"job_name": "etl", "start": "2026-01-03", "end": "2026-01-01"}
    assert "must be before" in api.error("POST", "/api/backfills", 422, backwards)
    assert "start and an end" in api.error("POST", "/api/backfills", 422, {"job_name": "etl"})
    bad_date = {"job_name": "etl", "start": "someday", "end": "2026-01-01"}
    assert "someday" in api.error("POST", "/api/backfills", 422, bad_date)
    body = {"job_name": "regional", **SPAN, "partitions": ["mars"]}
    assert "mars" in api.error("POST", "/api/backfills", 422, body)
    body = {"job_name": "regional", **SPAN, "partitions": []}
    assert "partitions" in api.error("POST", "/api/backfills", 422, body)
    body = {"job_name": "etl", **SPAN, "partitions": ["us"]}
    assert "no partitions" in api.error("POST", "/api/backfills", 422, body)
    assert "no backfill 'nope'" in api.error("GET", "/api/backfills/nope", 404)
    assert "no backfill 'nope'" in api.error("POST", "/api/backfills/nope/cancel", 404)
    assert "limit" in api.error("GET", "/api/backfills", 422, limit=0)
    assert api.get("/api/runs")["runs"] == []
