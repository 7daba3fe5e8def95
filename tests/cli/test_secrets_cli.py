"""``conveyor secrets`` and, end to end, a run whose task prints a secret and whose config
holds one: ``***`` in its logs, ``runs show``, the API, the UI and the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, String, Text, select

from conveyor import Instance, RunStatus
from conveyor.server.app import create_app
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.secrets import ENV_SECRET_KEY
from conveyor.workspace import load_file
from tests.cli.conftest import CONVEYOR
from tests.waiting import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

PASSWORD = "hunter22-warehouse"
TOKEN = "tok-0123456789"
PLAIN = "plain-key-9876"

WORKSPACE = """
from pydantic import SecretStr

from conveyor import Config, Resource, Secret, task, workflow


class Warehouse(Resource):
    password: str = Secret("warehouse_password")


class Keys(Config):
    key: SecretStr
    token: str = "none"


@task
def connect(warehouse: Warehouse, config: Keys) -> int:
    print(f"connecting with {warehouse.password}")
    print(f"key {config.key.get_secret_value()} token {config.token}")
    return 1


@task
def broken(warehouse: Warehouse) -> None:
    raise RuntimeError(f"login refused for {warehouse.password}")


@workflow(resources={"warehouse": Warehouse()})
def load():
    connect()


@workflow(resources={"warehouse": Warehouse()})
def fails():
    broken()
"""


class Conveyor:
    """The real ``conveyor`` command on one CONVEYOR_HOME, with stdin."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.home = folder / "home"
        self.env = {**os.environ, "CONVEYOR_HOME": str(self.home), "COLUMNS": "250"}
        self.env["NO_COLOR"] = "1"
        for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_DEBUG", ENV_SECRET_KEY):
            self.env.pop(name, None)

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONVEYOR, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.folder,
            input=stdin,
            timeout=120,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture
def conveyor(tmp_path: Path) -> Conveyor:
    return Conveyor(tmp_path)


def test_set_list_delete(conveyor: Conveyor) -> None:
    assert "no secrets" in conveyor.ok("secrets", "list")
    assert conveyor.ok("secrets", "set", "db/pw", "--value-stdin", stdin=PASSWORD + "\n") == (
        "secret db/pw set\n"
    )
    assert "updated" in conveyor.ok("secrets", "set", "db/pw", "--value-stdin", stdin="x2345")
    listed = conveyor.ok("secrets", "list")
    assert "db/pw" in listed
    assert PASSWORD not in listed
    assert "x2345" not in listed
    [row] = json.loads(conveyor.ok("secrets", "list", "--json"))
    assert row["name"] == "db/pw"
    assert row["updated_by"].startswith("local:")
    assert set(row) == {"name", "created_at", "updated_at", "updated_by"}
    inst = Instance.at(conveyor.home)
    assert inst.secrets.get("db/pw") == "x2345"  # one final newline is not the value's
    assert conveyor.ok("secrets", "delete", "db/pw") == "secret db/pw deleted\n"
    actions = [(e.action, e.target) for e in inst.audit.entries()]
    assert actions == [
        ("secret.delete", "db/pw"),
        ("secret.set", "db/pw"),
        ("secret.set", "db/pw"),
    ]
    assert (conveyor.home / "secret.key").stat().st_mode & 0o777 == 0o600
    inst.close()


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_the_value_is_asked_for_on_the_terminal_and_not_shown(conveyor: Conveyor) -> None:
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: conveyor on a terminal
        os.chdir(conveyor.folder)
        os.execve(sys.executable, [*CONVEYOR, "secrets", "set", "tty/pw"], conveyor.env)
    seen = b""

    def answer(prompt: bytes, text: bytes) -> None:
        nonlocal seen
        while prompt not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"no {prompt!r} within 30s: {seen!r}"
            seen += os.read(fd, 1024)
        os.write(fd, text)

    answer(b"value of tty/pw", b"typed-secret\n")
    answer(b"Repeat for confirmation", b"typed-secret\n")
    answer(b"secret tty/pw set", b"")
    os.waitpid(pid, 0)
    os.close(fd)
    assert b"typed-secret" not in seen
    inst = Instance.at(conveyor.home)
    assert inst.secrets.get("tty/pw") == "typed-secret"
    inst.close()


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("secrets", "set", "bad name", "--value-stdin"), "v1234", "letters, digits"),
        (("secrets", "set", "pw", "the-value"), None, "unexpected extra argument"),
        (("secrets", "set", "pw", "--value-stdin"), "", "the value is empty"),
        (("secrets", "set", "pw", "--value-stdin"), "\n", "the value is empty"),
        (("secrets", "set", "pw"), "v1234", "--value-stdin"),
        (("secrets", "delete", "pw"), None, "not set"),
        (("secrets", "delete", "a//b"), None, "letters, digits"),
        (("secrets", "set"), None, "Missing argument"),
    ],
)
def test_bad_input(conveyor: Conveyor, args: tuple[str, ...], stdin: str | None, says: str) -> None:
    done = conveyor(*args, stdin=stdin)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert "v1234" not in done.stdout + done.stderr


def test_a_wrong_key_file_is_named(conveyor: Conveyor) -> None:
    conveyor.ok("secrets", "set", "pw", "--value-stdin", stdin="v1234")
    key = conveyor.home / "secret.key"
    key.chmod(0o644)
    done = conveyor("secrets", "set", "other", "--value-stdin", stdin="v5678")
    assert done.returncode == 2
    assert f"chmod 600 {key}" in done.stderr


def _grep_tree(folder: Path, *values: str) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {v}" for v in values if v.encode() in data]
    return hits


def test_secrets_are_masked_in_logs_runs_show_api_ui_and_database(conveyor: Conveyor) -> None:
    folder = conveyor.folder
    (folder / "pipes.py").write_text(textwrap.dedent(WORKSPACE))
    conveyor.ok("secrets", "set", "warehouse_password", "--value-stdin", stdin=PASSWORD)
    conveyor.ok("secrets", "set", "api_token", "--value-stdin", stdin=TOKEN)
    # In this process: a plain value for the SecretStr field, a reference for the other.
    (folder / "here.yaml").write_text(
        f"tasks:\n  connect:\n    config:\n      key: {PLAIN}\n"
        f"      token: 'Secret(\"api_token\")'\n"
    )
    conveyor.ok("run", "pipes.py", "load", "--config", "here.yaml", "--echo")
    # In a worker process of its own (--detach): references only, read back from the run.
    (folder / "detached.yaml").write_text(
        "tasks:\n  connect:\n    config:\n      key: 'Secret(\"api_token\")'\n"
    )
    detached = conveyor.ok("run", "pipes.py", "load", "--config", "detached.yaml", "-d").split()[0]
    assert conveyor("run", "pipes.py", "fails").returncode == 1

    inst = Instance.at(conveyor.home)
    wait_until(lambda: inst.run(detached).status.is_terminal, 60, "the detached run to end")
    runs = {r.id: r for r in inst.runs(limit=10)}
    assert len(runs) == 3
    assert runs[detached].status is RunStatus.SUCCESS, runs[detached].error
    [here] = [r for r in runs.values() if r.job_name == "load" and r.id != detached]
    [fail] = [r for r in runs.values() if r.job_name == "fails"]
    assert here.run_config == {
        "tasks": {"connect": {"config": {"key": "***", "token": 'Secret("api_token")'}}}
    }
    values = (PASSWORD, TOKEN, PLAIN)

    # conveyor logs and conveyor runs show (text and JSON)
    for rid, key_shown in ((here.id, "***"), (detached, "***")):
        logs = conveyor.ok("logs", rid, "--task", "connect")
        assert "connecting with ***" in logs
        assert f"key {key_shown} token" in logs
    shown = conveyor.ok("runs", "show", fail.id) + conveyor.ok("runs", "show", fail.id, "--json")
    shown += conveyor.ok("runs", "show", here.id, "--json")
    shown += conveyor.ok("logs", fail.id, "--task", "broken", "--stderr")
    assert "login refused for ***" in shown
    assert not [v for v in values if v in shown]

    # The API and the UI
    holder = WorkspaceHolder(loader=lambda: load_file(folder / "pipes.py"), description="pipes")
    assert holder.reload() is None
    with TestClient(create_app(ServerState(instance=inst, workspace=holder))) as client:
        pages = []
        for rid in (here.id, detached, fail.id):
            task = "broken" if rid == fail.id else "connect"
            for url in (
                f"/api/runs/{rid}",
                f"/api/runs/{rid}/tasks",
                f"/api/runs/{rid}/events",
                f"/api/runs/{rid}/tasks/{task}/logs",
                f"/api/runs/{rid}/tasks/{task}/logs?stream=stderr",
                f"/runs/{rid}",
                f"/runs/{rid}/logs?task={task}",
                f"/runs/{rid}/logs?task={task}&stream=stderr",
            ):
                answer = client.get(url)
                assert answer.status_code == 200, (url, answer.text)
                pages.append(answer.text)
        text = "\n".join(pages)
        assert "connecting with ***" in text
        assert "login refused for ***" in text
        assert (
            "***"
            in client.get(f"/api/runs/{here.id}").json()["run_config"]["tasks"]["connect"][
                "config"
            ]["key"]
        )
        assert not [v for v in values if v in text]
        page = client.get(f"/runs/{here.id}").text
        assert "key: &#39;***&#39;" in page or "key: '***'" in page or "***" in page

    # The database and every file of the home: no value anywhere.
    inst.close()
    assert _grep_tree(conveyor.home, *values) == []


def _text_columns(inst: Instance) -> list[Any]:
    meta = MetaData()
    meta.reflect(inst.db.engine)
    return [
        (table, column)
        for table in meta.tables.values()
        for column in table.columns
        if isinstance(column.type, String | Text) or "json" in str(column.type).lower()
    ]


def test_database_rows_hold_no_value(durable: Instance) -> None:
    """Every text and JSON column of every table, on SQLite and on PostgreSQL."""
    from tests.execution import test_secrets as jobs

    inst = durable
    inst.secrets.set("warehouse_password", jobs.PASSWORD, by="test")
    inst.secrets.set("api_token", jobs.TOKEN, by="test")
    config = {"tasks": {"leak": {"config": {"key": jobs.PLAIN}}}}
    ok = jobs.leaky.run(instance=inst, run_config=config)
    bad = jobs.failing.run(instance=inst, raise_on_error=False)
    assert ok.success
    assert not bad.success
    seen = []
    with inst.db.read() as conn:
        for _table, column in _text_columns(inst):
            for (value,) in conn.execute(select(column)):
                if value is not None:
                    seen.append(json.dumps(value) if not isinstance(value, str) else value)
    text = "\n".join(seen)
    assert "cannot log in with ***" in text
    assert not [v for v in (jobs.PASSWORD, jobs.TOKEN, jobs.PLAIN) if v in text]
    assert inst.home is not None
    inst.db.dispose()
    assert _grep_tree(inst.home, jobs.PASSWORD, jobs.TOKEN, jobs.PLAIN) == []


def test_conveyor_run_prints_a_failure_masked(conveyor: Conveyor) -> None:
    (conveyor.folder / "pipes.py").write_text(textwrap.dedent(WORKSPACE))
    conveyor.ok("secrets", "set", "warehouse_password", "--value-stdin", stdin=PASSWORD)
    failed = conveyor("run", "pipes.py", "fails")
    assert failed.returncode == 1
    assert "login refused for ***" in failed.stdout + failed.stderr
    assert PASSWORD not in failed.stdout + failed.stderr
