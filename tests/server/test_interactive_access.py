"""The runs of an interactive job (each start is one) are guarded by the job's access
list, as its page is: a caller who may not read the workload sees none of its runs, in
lists or by id; one on its list does. An interactive job whose ``expose`` says it starts
only on request refuses a start from the API, whoever asks.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.server.app import create_app
from conveyor.server.auth_settings import AuthSettings
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus
from conveyor.workspace import load_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

WORKSPACE = """
from conveyor import interactive

@interactive(access={"olive": ["read", "access"]}, expose={"manual": False})
def lab(run_context):
    raise SystemExit("not started in these tests")
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    (tmp_path / "ws.py").write_text(textwrap.dedent(WORKSPACE))
    holder = WorkspaceHolder(lambda: load_file(tmp_path / "ws.py"), "ws.py")
    assert holder.reload() is None, holder.error
    instance = Instance.at(tmp_path / "home")
    tokens = {}
    for name, role in {"ada": "admin", "olive": "viewer", "carl": "viewer"}.items():
        instance.identity.add_user(name, role)
        tokens[name] = instance.identity.create_token(name, "test")[1]
    instance.workloads.register("lab", "interactive", {"expose": {"manual": False}})
    run = instance.run_store.create(
        job_name="lab", job_version="v", trigger="request", status=RunStatus.STARTING
    )
    app = create_app(ServerState(instance, holder, auth=AuthSettings(mode="login")))
    with TestClient(app, base_url="http://testserver") as client:
        yield client, tokens, run.id
    instance.close()


def test_its_runs_follow_its_access_list(world: tuple[TestClient, dict[str, str], str]) -> None:
    client, tokens, run_id = world

    def runs(user: str) -> list[str]:
        answer = client.get("/api/runs", headers={"Authorization": f"Bearer {tokens[user]}"})
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["runs"]]

    assert runs("ada") == [run_id]
    assert runs("olive") == [run_id]
    assert runs("carl") == []
    hidden = client.get(
        f"/api/runs/{run_id}", headers={"Authorization": f"Bearer {tokens['carl']}"}
    )
    assert hidden.status_code == 404
    assert "lab" not in hidden.text
    seen = client.get(f"/api/runs/{run_id}", headers={"Authorization": f"Bearer {tokens['olive']}"})
    assert seen.status_code == 200


def test_a_start_only_on_request_is_refused_even_to_an_admin(
    world: tuple[TestClient, dict[str, str], str],
) -> None:
    client, tokens, _ = world
    auth = {"Authorization": f"Bearer {tokens['ada']}"}
    for verb in ("start", "restart"):
        answer = client.post(f"/api/workloads/lab/{verb}", headers=auth)
        assert answer.status_code == 409, answer.text
        assert "starts only when its URL" in answer.json()["error"]
    stopped = client.post("/api/workloads/lab/stop", headers=auth)
    assert stopped.status_code == 200, stopped.text
