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


def test_a_form_over_a_mebibyte_is_refused_saying_so(client: TestClient) -> None:
    big = client.post(
        "/jobs/guarded/launch",
        content=b"tags=" + b"x" * (1024 * 1024 + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    assert "more than the 1,048,576 a form may be" in big.json()["error"]
