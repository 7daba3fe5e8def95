"""``conveyor promote`` and ``conveyor rollback``: on the local instance, and against a
server where an operator without ``promote`` is refused and audited."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.storage.deployments import NewVersion
from conveyor.storage.instance import Instance
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

WORKSPACE = """
from conveyor import job

@job
def etl(context) -> int:
    return 1
"""


def _versions(home: Path, count: int = 2) -> None:
    """Record ``count`` versions (jobs etl and report) and deploy each to dev in turn."""
    instance = Instance.at(home)
    try:
        for n in range(1, count + 1):
            record, _ = instance.deployments.add_version(
                NewVersion(
                    hash=f"{n:064x}",
                    archive_uri=f"code/{n}.tar.gz",
                    size=10,
                    entry="jobs.py",
                    manifest={"jobs": {"etl": {"version": str(n)}, "report": {"version": "1"}}},
                )
            )
            instance.deployments.activate("dev", record.number, action="deploy", by="dana")
    finally:
        instance.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A local instance with versions 1 and 2 deployed to dev; no server configured."""
    e = {**home_env(tmp_path / "home"), "COLUMNS": "200", "NO_COLOR": "1"}
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    for name in ("CONVEYOR_URL", "CONVEYOR_TOKEN", "CONVEYOR_DEBUG", "CONVEYOR_ENVIRONMENTS"):
        e.pop(name, None)
    e.pop("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", None)
    _versions(tmp_path / "home")
    return e


def _error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_promote_and_rollback_on_the_local_instance(env: dict[str, str], tmp_path: Path) -> None:
    done = conveyor(env, "promote", "--from", "dev", "--to", "pre", "-m", "ready")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pre: version 2 active (promoted from dev)"
    again = conveyor(env, "promote", "etl", "--from", "dev", "--to", "pre")
    assert again.stdout.strip() == "pre runs that version already; nothing changed"
    old = conveyor(env, "promote", "--from", "dev", "--to", "prod", "--version", "1", "--json")
    assert old.returncode == 0, old.stderr
    record = json.loads(old.stdout)
    assert (record["environment"], record["version"], record["action"]) == ("prod", 1, "promote")
    assert record["by"].startswith("local:")
    back = conveyor(env, "rollback", "--env", "dev")
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == "dev: version 1 active (rollback; was 2)"
    instance = Instance.at(tmp_path / "home")
    try:
        assert instance.deployments.environment("pre").active_version == 2
        assert instance.deployments.environment("dev").active_version == 1
        actions = [e.action for e in instance.audit.entries()]
        assert actions == ["rollback", "promote", "promote", "promote"]
    finally:
        instance.close()


def test_a_workspace_argument_promotes_the_whole_version(env: dict[str, str]) -> None:
    done = conveyor(env, "promote", "jobs.py", "--from", "dev", "--to", "pre")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["promote", "nope", "--from", "dev", "--to", "pre"], "job 'nope' is not in version 2"),
        (["promote", "--from", "pre", "--to", "dev"], "versions move forward"),
        (["promote", "--from", "dev", "--to", "qa"], "unknown environment 'qa'"),
        (["promote", "--from", "dev", "--to", "pre", "--version", "9"], "no version 9"),
        (["promote", "--from", "dev", "--to", "pre", "--version", "0"], "versions are numbered"),
        (["promote", "--from", "dev", "--to", "pre", "--version", "x"], "not a valid integer"),
        (["promote", "--to", "pre"], "Missing option '--from'"),
        (["rollback", "--env", "prod"], "nothing to roll back in prod"),
        (["rollback", "--env", "dev", "--to", "7"], "never active in dev"),
        (["rollback"], "Missing option '--env'"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(
    env: dict[str, str], args: list[str], said: str
) -> None:
    done = conveyor(env, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_policy_refuses_a_version_without_a_successful_run(env: dict[str, str]) -> None:
    env["CONVEYOR_PROMOTE_REQUIRE_SUCCESS"] = "pre"
    line = _error(conveyor(env, "promote", "--from", "dev", "--to", "pre"))
    assert "requires a successful run of it in dev" in line
    env["CONVEYOR_PROMOTE_REQUIRE_SUCCESS"] = "staging"
    assert "'staging' is not an environment" in _error(
        conveyor(env, "promote", "--from", "dev", "--to", "pre")
    )


# -- against a server ------------------------------------------------------------------------


@dataclass
class Server:
    home: Path
    url: str
    operator: str
    admin: str


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``conveyor server`` in login mode on 127.0.0.1 with versions 1 and 2 in dev; olga
    is an operator (operate, no promote), ada an admin."""
    workspace = tmp_path / "served.py"
    workspace.write_text(textwrap.dedent(WORKSPACE))
    home = tmp_path / "server-home"
    _versions(home)
    instance = Instance.at(home)
    try:
        instance.identity.add_user("olga", "operator", password="correct horse")
        instance.identity.add_user("ada", "admin", password="correct horse")
        _, operator = instance.identity.create_token("olga", "laptop")
        _, admin = instance.identity.create_token("ada", "laptop")
    finally:
        instance.close()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CONVEYOR, "server", str(workspace), "--host", "127.0.0.1", "--port", "0"],
            env=home_env(home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def url() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited:\n{log.read_text()}")
            found = re.search(r"conveyor server[^:]*: (http://\S+)", log.read_text())
            return found.group(1) if found else None

        base = wait_until(url, 90, "the server to print its URL")
        assert base is not None
        yield Server(home, base, operator, admin)
    finally:
        _stop(proc)


@pytest.mark.slow
def test_an_operator_may_not_promote_through_a_server_and_is_audited(
    server: Server, tmp_path: Path
) -> None:
    client = {**home_env(tmp_path / "client-home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    client.pop("CONVEYOR_DEBUG", None)
    client.update(CONVEYOR_URL=server.url, CONVEYOR_TOKEN=server.operator)
    line = _error(conveyor(client, "promote", "--from", "dev", "--to", "pre"))
    assert f"{server.url} refused" in line
    assert "needs the promote permission on jobs etl, report" in line
    line = _error(conveyor(client, "rollback", "--env", "dev"))
    assert "may not roll back dev" in line
    client["CONVEYOR_TOKEN"] = server.admin
    done = conveyor(client, "promote", "etl", "--from", "dev", "--to", "pre")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pre: version 2 active (promoted from dev)"
    back = conveyor(client, "rollback", "--env", "dev", "--to", "1")
    assert back.stdout.strip() == "dev: version 1 active (rollback; was 2)"
    instance = Instance.at(server.home)
    try:
        entries = instance.audit.entries()
        seen = [(e.action, e.actor.split(" ")[0], (e.detail or {}).get("outcome")) for e in entries]
        assert seen[:4] == [
            ("rollback", "ada", "done"),
            ("promote", "ada", "done"),
            ("rollback", "olga", "denied"),
            ("promote", "olga", "denied"),
        ]
        assert all(e.address == "127.0.0.1" for e in entries[:4])
        assert instance.deployments.environment("pre").active_version == 2
    finally:
        instance.close()
