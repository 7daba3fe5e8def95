"""Config injection from providers (dlt's): the environment, ``.conveyor/secrets.toml``
and ``.conveyor/config.toml`` with profile files on top, dlt's key lookup order, and the
errors that name the keys tried, the file and line, and the variable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conveyor import ConfigError, Instance
from conveyor.execution.config_providers import parse_env_value
from conveyor.workspace import Workspace, load_file

SECRET = "sk-live-0123456789abcdef"

PIPELINES = """
from pydantic import SecretStr

from conveyor import Config, job, task, workflow


class Api(Config):
    api_key: SecretStr
    url: str = "https://default.example"
    limit: int = 10


@job(section="crm")
def ingest(config: Api) -> dict:
    print("using key", config.api_key.get_secret_value())
    return {"url": config.url, "limit": config.limit, "key": config.api_key.get_secret_value()}


@job(section="crm", require={"profile": "prod"})
def ingest_prod(config: Api) -> dict:
    return {"url": config.url, "limit": config.limit, "key": config.api_key.get_secret_value()}


@job
def plain(rows: int = 5, label: str = "rows") -> str:
    return f"{label}={rows}"


@job
def copy(path: str) -> str:
    return path


@task
def fetch(config: Api) -> str:
    return config.url


@workflow(section="crm")
def sync() -> None:
    fetch()
"""

# Every environment name the lookups below could read, cleared for each test.
NAMES = ("API_KEY", "URL", "LIMIT", "ROWS", "LABEL", "CONVEYOR_PROFILE")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace folder with its ``.conveyor/``; the current directory is elsewhere."""
    root = tmp_path / "project"
    (root / ".conveyor").mkdir(parents=True)
    (root / "pipelines.py").write_text(PIPELINES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in list(os.environ):
        if name.startswith("JOBS__") or name in NAMES:
            monkeypatch.delenv(name)
    return root


def load(project: Path) -> Workspace:
    return load_file(project / "pipelines.py")


def write(project: Path, name: str, text: str) -> None:
    (project / ".conveyor" / name).write_text(textwrap.dedent(text))


def toml_at(path: tuple[str, ...], value: str) -> str:
    """A TOML document holding ``value`` at ``path`` (dotted keys, as written by hand)."""
    return f"{'.'.join(path)} = {value!r}\n".replace("'", '"')


# The five key shapes of field ``url`` of job ``ingest`` in section ``crm``, most specific first.
SHAPES: list[tuple[str, ...]] = [
    ("jobs", "crm", "ingest", "url"),
    ("jobs", "crm", "url"),
    ("jobs", "ingest", "url"),
    ("jobs", "url"),
    ("url",),
]


@pytest.mark.parametrize("provider", ["env", "secrets.toml", "config.toml"])
@pytest.mark.parametrize("level", range(len(SHAPES)))
def test_each_lookup_level_is_read_and_the_most_specific_wins(
    project: Path,
    instance: Instance,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    level: int,
) -> None:
    # The value at ``level`` and a different one at every less specific level of the
    # same provider: the one at ``level`` is read.
    monkeypatch.setenv("JOBS__CRM__INGEST__API_KEY", SECRET)
    doc = ""
    for i in range(level, len(SHAPES)):
        value = f"https://level{i}.example"
        if provider == "env":
            monkeypatch.setenv("__".join(p.upper() for p in SHAPES[i]), value)
        else:
            doc += toml_at(SHAPES[i], value)
    if provider != "env":
        # The root key first: a TOML table header would swallow it otherwise.
        write(project, provider, "".join(sorted(doc.splitlines(True), key=lambda s: "." in s)))
    result = load(project).job("ingest").run(instance=instance)
    assert result.output("ingest")["url"] == f"https://level{level}.example"


def test_a_higher_provider_wins_at_any_level(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project,
        "config.toml",
        """
        [jobs.crm.ingest]
        url = "https://config.example"
        limit = 1
        """,
    )
    write(
        project,
        "secrets.toml",
        """
        [jobs.crm.ingest]
        api_key = "from-secrets"
        url = "https://secrets.example"
        """,
    )
    ws = load(project)
    first = ws.job("ingest").run(instance=instance).output("ingest")
    assert first == {"url": "https://secrets.example", "limit": 1, "key": "from-secrets"}
    # The least specific environment key beats the most specific file key (dlt's rule).
    monkeypatch.setenv("URL", "https://env.example")
    monkeypatch.setenv("LIMIT", "7")
    second = ws.job("ingest").run(instance=instance).output("ingest")
    assert second == {"url": "https://env.example", "limit": 7, "key": "from-secrets"}


def test_explicit_run_config_wins_over_providers(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS__CRM__INGEST__URL", "https://env.example")
    monkeypatch.setenv("JOBS__CRM__INGEST__API_KEY", SECRET)
    write(project, "config.toml", "[jobs.crm.ingest]\nlimit = 3\n")
    job = load(project).job("ingest")
    given = {"config": {"url": "https://given.example"}}
    out = job.run(given, instance=instance).output("ingest")
    assert out == {"url": "https://given.example", "limit": 3, "key": SECRET}
    # Nothing from the providers is stored with the run: its config is what was given.
    (run,) = instance.runs("ingest", limit=1)
    assert run.run_config == given
    # Without a value anywhere, the field's default applies.
    monkeypatch.delenv("JOBS__CRM__INGEST__URL")
    assert job.run(instance=instance).output("ingest")["url"] == "https://default.example"


def test_default_section_is_the_module_and_signature_params_are_filled(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``plain`` has no section=: its section is its file's name, ``pipelines``.
    write(project, "config.toml", "[jobs.pipelines.plain]\nrows = 42\n")
    monkeypatch.setenv("JOBS__PLAIN__LABEL", "count")
    assert load(project).job("plain").run(instance=instance).output("plain") == "count=42"


def test_text_from_a_secrets_file_is_redacted(project: Path, instance: Instance) -> None:
    """A value from secrets.toml is a secret even in a plain ``str`` field."""
    write(project, "secrets.toml", '[jobs.pipelines.plain]\nlabel = "hush-0123456789"\n')
    result = load(project).job("plain").run(instance=instance)
    assert result.output("plain") == "hush-0123456789=5"
    assert result.masked("label hush-0123456789") == "label ***"


def test_a_workflow_task_reads_its_own_key_first(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS__API_KEY", SECRET)
    write(
        project,
        "config.toml",
        """
        [jobs.crm.sync]
        url = "https://job.example"
        """,
    )
    ws = load(project)
    assert ws.job("sync").run(instance=instance).output("fetch") == "https://job.example"
    monkeypatch.setenv("JOBS__CRM__SYNC__FETCH__URL", "https://task.example")
    assert ws.job("sync").run(instance=instance).output("fetch") == "https://task.example"


def test_profile_files_are_layered_over_the_base(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "secrets.toml", '[jobs.crm]\napi_key = "base-key"\n')
    write(project, "prod.secrets.toml", '[jobs.crm]\napi_key = "prod-key"\n')
    write(project, "config.toml", '[jobs.crm]\nurl = "https://base.example"\nlimit = 1\n')
    write(project, "prod.config.toml", '[jobs.crm]\nurl = "https://prod.example"\n')
    write(project, "dev.config.toml", '[jobs.crm]\nurl = "https://dev.example"\n')
    ws = load(project)
    # No profile: the base files only.
    base = ws.job("ingest").run(instance=instance).output("ingest")
    assert base == {"url": "https://base.example", "limit": 1, "key": "base-key"}
    # require={"profile": "prod"}: each prod file over its base; what it lacks comes from it.
    prod = ws.job("ingest_prod").run(instance=instance).output("ingest_prod")
    assert prod == {"url": "https://prod.example", "limit": 1, "key": "prod-key"}
    # CONVEYOR_PROFILE picks a profile for jobs that do not require one.
    monkeypatch.setenv("CONVEYOR_PROFILE", "dev")
    dev = ws.job("ingest").run(instance=instance).output("ingest")
    assert dev == {"url": "https://dev.example", "limit": 1, "key": "base-key"}
    assert ws.job("ingest_prod").run(instance=instance).output("ingest_prod")["key"] == "prod-key"
    monkeypatch.setenv("CONVEYOR_PROFILE", "../etc")
    with pytest.raises(ConfigError, match=r"CONVEYOR_PROFILE: profile '\.\./etc' must be a name"):
        ws.job("ingest").run(instance=instance)


def test_a_missing_field_lists_every_key_tried(project: Path, instance: Instance) -> None:
    write(project, "config.toml", "[jobs.crm.ingest]\nlimit = 2\n")
    write(project, "secrets.toml", "# no keys yet\n")
    with pytest.raises(ConfigError) as info:
        load(project).job("ingest").run(instance=instance)
    message = str(info.value)
    assert message.startswith(
        "config.api_key: field required: config field 'api_key' of job 'ingest' is missing: "
        "tried env JOBS__CRM__INGEST__API_KEY, env JOBS__CRM__API_KEY, env JOBS__INGEST__API_KEY, "
        "env JOBS__API_KEY, env API_KEY, secrets.toml jobs.crm.ingest.api_key, "
        "secrets.toml jobs.crm.api_key, secrets.toml jobs.ingest.api_key, "
        "secrets.toml jobs.api_key, secrets.toml api_key, config.toml jobs.crm.ingest.api_key, "
    )
    assert "config.toml api_key; set one of them" in message
    assert str(project / ".conveyor") in message
    assert not instance.runs("ingest"), "the run failed before it was recorded"


def test_os_variables_are_not_bare_keys(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field named ``path`` never takes $PATH; ``JOBS__PATH`` and the files still work."""
    assert os.environ.get("PATH")
    job = load(project).job("copy")
    with pytest.raises(ConfigError) as info:
        job.run(instance=instance)
    assert "env JOBS__PATH, secrets.toml" not in str(info.value)
    assert "env JOBS__PATH; set one of them" in str(info.value)
    monkeypatch.setenv("JOBS__PATH", "/data/in")
    assert job.run(instance=instance).output("copy") == "/data/in"
    monkeypatch.delenv("JOBS__PATH")
    write(project, "config.toml", 'path = "/data/toml"\n')
    assert job.run(instance=instance).output("copy") == "/data/toml"


def test_bad_toml_names_the_file_and_line(project: Path, instance: Instance) -> None:
    write(project, "secrets.toml", '[jobs.crm]\napi_key = "ok"\nurl = https://no-quotes\n')
    with pytest.raises(ConfigError) as info:
        load(project).job("ingest").run(instance=instance)
    message = str(info.value)
    assert str(project / ".conveyor" / "secrets.toml") in message
    assert "not valid TOML" in message
    assert "line 3" in message


def test_an_invalid_env_value_names_the_variable(
    project: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS__CRM__INGEST__API_KEY", SECRET)
    monkeypatch.setenv("JOBS__CRM__LIMIT", "lots")
    with pytest.raises(ConfigError) as info:
        load(project).job("ingest").run(instance=instance)
    assert str(info.value) == (
        "config.limit: input should be a valid integer, unable to parse string as an integer "
        "(the value comes from env JOBS__CRM__LIMIT; fix it there)"
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("12", 12),
        ("1.5", 1.5),
        ("true", True),
        ('["a", "b"]', ["a", "b"]),
        ('{"x": 1}', {"x": 1}),
        ("2024-01-02", date(2024, 1, 2)),
        ("plain text", "plain text"),
    ],
)
def test_env_values_parse_as_dlt_does(raw: str, value: Any) -> None:
    assert parse_env_value(raw) == value


def test_a_secret_from_a_provider_stays_masked_in_another_process(
    project: Path, tmp_path: Path
) -> None:
    """The CLI runs the job in a process of its own: the key comes from secrets.toml there,
    the job gets it, and what the run stores and prints holds only ``***``."""
    write(project, "secrets.toml", f'[jobs.crm.ingest]\napi_key = "{SECRET}"\n')
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS__") and k not in NAMES}
    env.update({"CONVEYOR_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"})
    env.pop("CONVEYOR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", str(project / "pipelines.py"), "ingest"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path / "elsewhere",
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    assert SECRET not in out
    inst = Instance.at(home)
    try:
        (run,) = inst.runs("ingest")
        assert run.run_config == {}
        details = inst.run_details(run.id)
        assert SECRET not in repr(details)
        logs = inst.logs(run.id, "ingest")
        assert "using key ***" in logs
        assert SECRET not in logs
    finally:
        inst.close()
