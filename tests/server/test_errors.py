"""How the API answers a request it cannot read: an error that names the problem."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.test_auth import client

__all__ = ["client"]  # the fixture, shared with the tests of authorize


def test_a_body_that_is_not_json_is_named_as_such(client: TestClient) -> None:
    bad = client.post(
        "/api/runs", content=b'{"job_name": guarded}', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("the request's body is not valid JSON (at character")
