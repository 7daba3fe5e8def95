"""Secrets in runs: ``Secret("name")`` in resources and config resolved when the run starts,
on every executor; ``SecretStr`` fields; every value masked in what the run writes."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from conveyor import Config, Instance, Resource, RunStatus, Secret, job, task, workflow
from conveyor.errors import ConfigError
from conveyor.execution.capture import Capture
from conveyor.execution.launch import execute_run
from conveyor.execution.secrets import references, resolve
from conveyor.storage.redact import Redactor
from conveyor.storage.secrets import ENV_SECRET_KEY, UnknownSecretError

PASSWORD = "hunter22-warehouse"
TOKEN = "tok-0123456789"
PLAIN = "plain-key-9876"


class Warehouse(Resource):
    user: str = "etl"
    password: str = Secret("warehouse_password")
    token: SecretStr = Secret("api_token")  # type: ignore[assignment]


class Keys(Config):
    key: SecretStr
    region: str = "eu"


class Dsn(Config):
    dsn: str


@task
def leak(warehouse: Warehouse, config: Keys) -> int:
    print("password is", warehouse.password)
    print(f"token={warehouse.token.get_secret_value()} key={config.key.get_secret_value()}")
    sys.stdout.write(PASSWORD[:5])
    sys.stdout.write(PASSWORD[5:] + "\n")
    sys.stderr.write(f"on stderr: {TOKEN}\n")
    return len(warehouse.password)


@task
def fail_loudly(warehouse: Warehouse) -> None:
    raise ValueError(f"cannot log in with {warehouse.password}")


@workflow(resources={"warehouse": Warehouse()})
def leaky() -> None:
    leak()


@workflow(resources={"warehouse": Warehouse()})
def failing() -> None:
    fail_loudly()


@task
def connect(config: Dsn) -> str:
    print(f"connecting to {config.dsn}")
    return config.dsn


@job
def body() -> str:
    return str(connect())


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET_KEY, Fernet.generate_key().decode())


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Instance]:
    inst = Instance.at(tmp_path / "home")
    inst.secrets.set("warehouse_password", PASSWORD, by="test")
    inst.secrets.set("api_token", TOKEN, by="test")
    yield inst
    inst.close()


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[object]:
    from conveyor.execution.executors.dask import DaskExecutor

    executor = DaskExecutor(n_workers=1, threads_per_worker=1)
    yield executor
    executor.close()


@pytest.fixture(params=["in_process", "multiprocess", "dask"])
def executor(request: pytest.FixtureRequest) -> object:
    if request.param == "dask":
        return request.getfixturevalue("dask_executor")
    return request.param


def _files_hold(folder: Path, *values: str) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {v}" for v in values if v.encode() in data]
    return found


def test_secrets_resolve_on_every_executor_and_are_masked(
    home: Instance, executor: object, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"tasks": {"leak": {"config": {"key": PLAIN}}}}
    result = leaky.run(instance=home, run_config=config, executor=executor)
    assert result.status is RunStatus.SUCCESS
    assert result.output("leak") == len(PASSWORD)
    out = home.logs(result.run_id, "leak")
    assert out == "password is ***\ntoken=*** key=***\n***\n"
    assert home.logs(result.run_id, "leak", stderr=True) == "on stderr: ***\n"
    run = home.run(result.run_id)
    assert run.run_config == {"tasks": {"leak": {"config": {"key": "***"}}}}
    reads = {(e.actor, e.target) for e in home.audit.entries(action="secret.read")}
    actor = f"run:{result.run_id} (leaky)"
    assert reads == {(actor, "warehouse_password"), (actor, "api_token")}
    # Echoed to the terminal masked too, a value written in two pieces included.
    shown = capsys.readouterr()
    assert PASSWORD not in shown.out + shown.err
    assert TOKEN not in shown.err
    home.db.dispose()
    assert home.home is not None
    # Neither the database nor the log files hold a value.
    assert _files_hold(home.home, PASSWORD, TOKEN, PLAIN) == []


def test_errors_events_and_tracebacks_are_masked(home: Instance) -> None:
    result = failing.run(instance=home, raise_on_error=False, executor="multiprocess")
    assert result.status is RunStatus.FAILURE
    details = home.run_details(result.run_id)
    assert details.run.error is not None
    assert "cannot log in with ***" in details.run.error
    [attempt] = details.tasks[0].attempts
    assert attempt.error_message == "cannot log in with ***"
    assert attempt.error_traceback is not None
    assert PASSWORD not in attempt.error_traceback
    [event] = [e for e in details.events if e.kind == "task_failure"]
    assert PASSWORD not in event.message
    assert PASSWORD not in str(event.data)
    assert "***" in event.message
    stderr = home.logs(result.run_id, "fail_loudly", stderr=True)
    assert "ValueError: cannot log in with ***" in stderr
    assert home.home is not None
    home.db.dispose()
    assert _files_hold(home.home, PASSWORD) == []


def test_an_unknown_secret_fails_the_run_before_any_task(home: Instance) -> None:
    home.secrets.delete("api_token", by="test")
    with pytest.raises(UnknownSecretError, match="conveyor secrets set api_token"):
        leaky.run(instance=home, run_config={"tasks": {"leak": {"config": {"key": "k"}}}})
    [run] = home.runs()
    assert run.status is RunStatus.FAILURE
    assert run.error is not None
    assert "`conveyor secrets set api_token`" in run.error
    assert home.run_details(run.id).tasks == []
    result = leaky.run(
        instance=home,
        raise_on_error=False,
        run_config={"tasks": {"leak": {"config": {"key": Secret("missing"), "region": "x"}}}},
    )
    assert result.status is RunStatus.FAILURE
    assert "secrets 'api_token', 'missing' are not set" in str(result.error)


def test_a_run_started_elsewhere_resolves_its_stored_references(home: Instance) -> None:
    run_config = {"tasks": {"leak": {"config": {"key": 'Secret("api_token")'}}}}
    run = home.run_store.create(job_name="leaky", job_version="x", run_config=run_config)
    result = execute_run(run.id, leaky, instance=home)
    assert result.status is RunStatus.SUCCESS, result.error
    assert home.run(run.id).run_config == run_config
    assert "key=***" in home.logs(run.id, "leak")


def test_a_plain_secretstr_is_not_kept_for_a_run_started_elsewhere(home: Instance) -> None:
    parent = leaky.run(instance=home, run_config={"tasks": {"leak": {"config": {"key": PLAIN}}}})
    stored = home.run(parent.run_id).run_config
    run = home.run_store.create(job_name="leaky", job_version="x", run_config=stored)
    with pytest.raises(ConfigError, match=r"tasks\.leak\.config\.key"):
        execute_run(run.id, leaky, instance=home)
    assert home.run(run.id).status is RunStatus.FAILURE
    message = str(home.run(run.id).error)
    assert "tasks.leak.config.key" in message
    assert 'Secret("NAME")' in message
    assert home.run_details(run.id).tasks == []


def test_a_job_body_resolves_the_config_of_the_tasks_it_calls(home: Instance) -> None:
    config = {"tasks": {"connect": {"config": {"dsn": Secret("warehouse_password")}}}}
    result = body.run(instance=home, run_config=config)
    assert result.output("connect") == PASSWORD
    assert home.logs(result.run_id, "connect") == "connecting to ***\n"
    assert home.run(result.run_id).run_config == {
        "tasks": {"connect": {"config": {"dsn": 'Secret("warehouse_password")'}}}
    }


class Login(Config):
    password: SecretStr = SecretStr(Secret("warehouse_password"))
    user: str = "etl"


@job(resources={"warehouse": Warehouse()})
def logs_in(config: Login, warehouse: Warehouse) -> str:
    print(f"{config.user}:{config.password.get_secret_value()} {warehouse.user}")
    return warehouse.password


def test_job_config_defaults_and_resource_overrides_resolve(home: Instance) -> None:
    overrides = {"resources": {"warehouse": {"user": Secret("api_token")}}}
    result = logs_in.run(instance=home, run_config=overrides)
    assert result.output("logs_in") == PASSWORD
    assert home.logs(result.run_id, "logs_in") == "etl:*** ***\n"
    assert home.run(result.run_id).run_config == {
        "resources": {"warehouse": {"user": 'Secret("api_token")'}}
    }


def test_a_run_without_secrets_needs_no_key_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_SECRET_KEY)
    inst = Instance.at(tmp_path / "home")
    result = body.run(instance=inst, run_config={"tasks": {"connect": {"config": {"dsn": "x"}}}})
    assert result.output("connect") == "x"
    # The instance's key file is made on first use, here to sign the stored result, and
    # only its owner may read it.
    key = tmp_path / "home" / "secret.key"
    assert key.stat().st_mode & 0o077 == 0
    inst.close()


def test_live_files_are_masked_line_by_line(tmp_path: Path) -> None:
    live = tmp_path / "live"
    cap = Capture(False, str(live), ("run", "t", 1), Redactor([PASSWORD]))
    cap.write("stdout", "a line\npass=" + PASSWORD[:3])
    cap.write("stdout", PASSWORD[3:] + "\nnext " + PASSWORD[:2])
    data = (live / "t.1.out").read_text()
    assert data == "a line\npass=***\n"
    cap.write("stdout", PASSWORD[2:])
    cap.close()
    assert (live / "t.1.out").read_text() == "a line\npass=***\nnext ***"
    assert cap.text("stdout") == "a line\npass=***\nnext ***"


def test_echo_is_masked_a_line_at_a_time() -> None:
    shown = io.StringIO()
    cap = Capture(True, None, None, Redactor([PASSWORD]))
    cap.echo_to("stdout", shown, "x " + PASSWORD[:4])
    assert shown.getvalue() == ""
    cap.echo_to("stdout", shown, PASSWORD[4:] + "\ny ")
    cap.echo_to("stdout", shown, PASSWORD)
    cap.close()
    assert shown.getvalue() == "x ***\ny ***"


def test_references_and_resolution_through_models() -> None:
    res = Warehouse()
    assert references([res, {"a": ['Secret("x")', ('Secret("y")',)]}]) == {
        "warehouse_password",
        "api_token",
        "x",
        "y",
    }
    values = {"warehouse_password": "pw-1234", "api_token": "tk-1234"}
    resolved = resolve(res, values.__getitem__)
    assert isinstance(resolved, Warehouse)
    assert resolved is not res
    assert resolved.password == "pw-1234"
    assert isinstance(resolved.token, SecretStr)
    assert resolved.token.get_secret_value() == "tk-1234"
    assert res.password == 'Secret("warehouse_password")'  # the definition is untouched
    same = {"a": [1, "b"]}
    assert resolve(same, values.__getitem__) is same
