"""What ``auth.authorize`` lets through today: programs and the server's own pages;
a write that another site's page makes through the user's browser is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.server.app import create_app
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.workspace import load_file

WORKSPACE = """
from conveyor import task, workflow

@task
def one():
    return 1

@workflow
def guarded():
    one()
"""


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    path = tmp_path / "guarded.py"
    path.write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(path), str(path))
    assert holder.reload() is None
    return TestClient(create_app(ServerState(Instance.at(tmp_path / "home"), holder)))


def _launch(client: TestClient, headers: dict[str, str]) -> int:
    return client.post("/api/runs", json={"job_name": "guarded"}, headers=headers).status_code


def test_programs_and_our_own_pages_may_launch(client: TestClient) -> None:
    assert _launch(client, {}) == 201  # curl, httpx: no Origin, no Sec-Fetch-Site
    assert _launch(client, {"sec-fetch-site": "same-origin", "origin": "http://testserver"}) == 201
    assert _launch(client, {"origin": "http://testserver"}) == 201  # an older browser


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        # localhost on another port is the same site, but not the same origin
        {"sec-fetch-site": "same-site", "origin": "http://testserver:8080"},
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": "null"},
    ],
)
def test_another_sites_page_may_not_launch_cancel_or_switch(
    client: TestClient, headers: dict[str, str]
) -> None:
    refused = client.post("/api/runs", json={"job_name": "guarded"}, headers=headers)
    assert refused.status_code == 403
    assert "from another site's page" in refused.json()["error"]
    assert "call the API from a program" in refused.json()["error"]
    assert client.get("/api/runs").json()["runs"] == []  # nothing was recorded
    assert client.post("/api/schedules/guarded/off", headers=headers).status_code == 403


def test_reading_is_allowed_from_anywhere(client: TestClient) -> None:
    headers = {"sec-fetch-site": "cross-site", "origin": "https://elsewhere.example"}
    assert client.get("/api/jobs", headers=headers).status_code == 200
