"""Webhooks authenticated by their own secret (``webhook/<path>``): an HMAC signature of
the body or the secret as a bearer token; required with login, checked when sent locally."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.server.auth_settings import AuthSettings
from tests.server.test_api import Api, make_api

PATH = "report-hook"
SECRET = "s3cret-hook-value"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


@pytest.fixture
def login_api(api: Api) -> Api:
    api.state.auth = AuthSettings(mode="login")
    return api


def _signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _call(
    api: Api, headers: dict[str, str], body: bytes = b'{"file": "a.csv"}', path: str = PATH
) -> httpx.Response:
    answer: httpx.Response = api.client.post(
        f"/api/webhooks/{path}",
        content=body,
        headers={"content-type": "application/json", **headers},
    )
    return answer


def _webhook_audit(api: Api) -> list[tuple[str, str | None]]:
    return [(e.actor, e.target) for e in api.instance.audit.entries(action="webhook")]


def test_login_mode_refuses_a_webhook_without_a_secret(login_api: Api) -> None:
    answer = _call(login_api, {})
    assert answer.status_code == 403, answer.text
    message = answer.json()["error"]
    assert f"conveyor secrets set webhook/{PATH}" in message
    assert login_api.instance.webhook_calls_since(0) == []


def test_login_mode_takes_a_signed_call_once(login_api: Api) -> None:
    login_api.instance.secrets.set(f"webhook/{PATH}", SECRET, by="test")
    body = json.dumps({"file": "a.csv"}).encode()
    answer = _call(login_api, {"X-Conveyor-Signature": _signed(body)}, body)
    assert answer.status_code == 202, answer.text
    [queued] = answer.json()["queued"]
    assert queued["job_name"] == "report"
    run = login_api.instance.run(queued["run_id"])
    assert run.tags["webhook_payload"] == '{"file": "a.csv"}'
    assert _webhook_audit(login_api) == [(f"secret webhook/{PATH}", PATH)]
    # Upper-case hex is the same signature.
    upper = "sha256=" + _signed(body).split("=", 1)[1].upper()
    assert _call(login_api, {"X-Conveyor-Signature": upper}, body).status_code == 202


def test_login_mode_takes_the_secret_as_a_bearer_token(login_api: Api) -> None:
    login_api.instance.secrets.set(f"webhook/{PATH}", SECRET, by="test")
    answer = _call(login_api, {"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 202, answer.text
    assert len(_webhook_audit(login_api)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-secret"},
        {"Authorization": f"Basic {SECRET}"},
        {"Authorization": "Bearer cvt_0123456789ab_notatoken"},
        {"X-Conveyor-Signature": "sha256=00"},
        {"X-Conveyor-Signature": "sha1=" + "0" * 40},
        {"X-Conveyor-Signature": "garbage"},
        {"X-Conveyor-Signature": ""},
    ],
)
def test_login_mode_refuses_a_missing_or_wrong_proof(
    login_api: Api, headers: dict[str, str]
) -> None:
    login_api.instance.secrets.set(f"webhook/{PATH}", SECRET, by="test")
    answer = _call(login_api, headers)
    assert answer.status_code == 401, answer.text
    assert f"conveyor secrets set webhook/{PATH}" in answer.json()["error"]
    assert login_api.instance.webhook_calls_since(0) == []
    assert _webhook_audit(login_api) == []


def test_a_signature_of_another_body_is_refused(login_api: Api) -> None:
    login_api.instance.secrets.set(f"webhook/{PATH}", SECRET, by="test")
    signed = _signed(b'{"file": "a.csv"}')
    answer = _call(login_api, {"X-Conveyor-Signature": signed}, b'{"file": "evil.csv"}')
    assert answer.status_code == 401
    other_key = _signed(b'{"file": "a.csv"}', "another-secret")
    assert _call(login_api, {"X-Conveyor-Signature": other_key}).status_code == 401


def test_login_mode_lists_no_webhook_paths(login_api: Api) -> None:
    login_api.instance.secrets.set("webhook/nope", SECRET, by="test")
    answer = _call(login_api, {"Authorization": f"Bearer {SECRET}"}, path="nope")
    assert answer.status_code == 404
    assert PATH not in answer.json()["error"]
    # Without the secret the caller learns nothing, not even that there is no such hook.
    assert _call(login_api, {}, path="other").status_code == 403


def test_local_mode_is_open_but_checks_a_signature_sent(api: Api) -> None:
    assert _call(api, {}).status_code == 202
    assert _webhook_audit(api) == [("local admin", PATH)]
    # A signature with no secret to check it against is refused, not ignored.
    assert _call(api, {"X-Conveyor-Signature": _signed(b"{}")}).status_code == 401
    api.instance.secrets.set(f"webhook/{PATH}", SECRET, by="test")
    body = b'{"n": 1}'
    assert _call(api, {"X-Conveyor-Signature": _signed(body, "wrong")}, body).status_code == 401
    answer = _call(api, {"X-Conveyor-Signature": _signed(body)}, body)
    assert answer.status_code == 202, answer.text
    assert _webhook_audit(api)[0] == (f"secret webhook/{PATH}", PATH)
    assert _call(api, {}).status_code == 202


def test_a_webhook_path_that_cannot_name_a_secret(login_api: Api) -> None:
    answer = _call(login_api, {}, path="bad path")
    assert answer.status_code == 403
    assert "letters, digits" in answer.json()["error"]
