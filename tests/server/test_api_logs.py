"""``/api/runs/{id}/tasks/{key}/logs`` (by offsets, and live over server-sent events) and
``.../result``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_api import Api, make_api
from tests.waiting import wait_until


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


def test_log_by_offsets(api: Api) -> None:
    rid = api.run("etl")["id"]
    url = f"/api/runs/{rid}/tasks/extract/logs"
    whole = api.get(url)
    assert whole["text"] == "reading http://example\n"
    assert whole["complete"] is True
    assert whole["size"] == len(whole["text"])
    first = api.get(url, limit=7)
    assert (first["text"], first["next_offset"], first["complete"]) == ("reading", 7, False)
    rest = api.get(url, offset=first["next_offset"])
    assert first["text"] + rest["text"] == whole["text"]
    assert rest["complete"] is True
    assert api.get(url, offset=whole["size"])["text"] == ""
    assert api.get(url, stream="stderr")["text"] == ""
    assert "past the end" in api.error("GET", url, 422, offset=whole["size"] + 1)
    assert "stream" in api.error("GET", url, 422, stream="stdin")
    assert "offset" in api.error("GET", url, 422, offset=-1)


def test_log_of_unknown_task_or_run_is_404(api: Api) -> None:
    rid = api.run("etl")["id"]
    message = api.error("GET", f"/api/runs/{rid}/tasks/nope/logs", 404)
    assert "no task 'nope'" in message
    assert "extract" in message
    assert "no task 'nope'" in api.error("GET", f"/api/runs/{rid}/tasks/nope/logs/stream", 404)
    assert "no run" in api.error("GET", "/api/runs/feedbeef/tasks/extract/logs", 404)
    assert "no run" in api.error("GET", "/api/runs/feedbeef/tasks/extract/logs/stream", 404)


def _events(lines: Any) -> Any:
    """``(event, data)`` of each server-sent event read from ``lines``."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: ") and kind is not None:
            yield kind, json.loads(line[len("data: ") :])
            kind = None


def test_live_log_stream_starts_while_the_task_runs_and_ends_with_it(api: Api) -> None:
    gate = api.folder / "gate"
    rid = api.launch("slow")
    worker = threading.Thread(target=api.start_queued)
    worker.start()
    try:
        url = f"/api/runs/{rid}/tasks/follow_me/logs"
        wait_until(
            lambda: api.client.get(url).status_code == 200 and "first" in api.get(url)["text"],
            60,
            "the running task's first line",
        )
        assert api.get(url)["complete"] is False
        got: list[tuple[str, Any]] = []
        with api.client.stream("GET", f"{url}/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for kind, data in _events(response.iter_lines()):
                got.append((kind, data))
                if kind == "log" and "first line" in data["text"]:
                    # Still running: only now may it go on.
                    assert api.get(f"/api/runs/{rid}")["status"] == "running"
                    gate.touch()
                if kind == "end":
                    break
        text = "".join(d["text"] for k, d in got if k == "log")
        assert text == "first line\nsecond line\n"
        assert got[-1] == ("end", {"status": "success"})
    finally:
        gate.touch()
        worker.join(60)
    assert api.get(f"/api/runs/{rid}")["status"] == "success"


def test_stream_of_an_ended_task_gives_its_lines_and_ends(api: Api) -> None:
    rid = api.run("etl")["id"]
    response = api.client.get(f"/api/runs/{rid}/tasks/extract/logs/stream")
    events = list(_events(response.text.splitlines()))
    assert events == [
        ("log", {"text": "reading http://example\n"}),
        ("end", {"status": "success"}),
    ]


def test_results_as_json_or_repr(api: Api) -> None:
    rid = api.run("etl")["id"]
    total = api.get(f"/api/runs/{rid}/tasks/total/result")
    assert (total["is_json"], total["value"], total["type"]) == (True, 11, "builtins.int")
    assert total["size"] > 0
    assert total["repr"] == "11"
    assert api.get(f"/api/runs/{rid}/tasks/extract/result")["value"] == [0, 1, 2]
    failed = api.run("flaky", {"tasks": {"risky": {"config": {"fail": True}}}})["id"]
    boxed = api.get(f"/api/runs/{failed}/tasks/boxed/result")
    assert (boxed["is_json"], boxed["value"], boxed["repr"]) == (False, None, "Box(7)")
    assert boxed["type"].endswith(".Box")
    assert "only tasks that succeeded" in api.error(
        "GET", f"/api/runs/{failed}/tasks/risky/result", 404
    )
    assert "no task 'nope'" in api.error("GET", f"/api/runs/{rid}/tasks/nope/result", 404)
    assert "no run" in api.error("GET", "/api/runs/nope/tasks/total/result", 404)
