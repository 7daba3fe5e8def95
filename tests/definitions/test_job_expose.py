"""dlt's job options: ``expose``, ``require``, ``section``/``spec``/``deliver``,
``allow_external_schedulers``, and ``manual=False`` refused in the Python API, the CLI and
``POST /api/runs`` while scheduled runs go on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Config, DefinitionError, job, task, workflow
from conveyor.errors import ExecutionError
from conveyor.storage.states import RunStatus
from tests.server.test_api import Api, make_api

# -- section, spec, deliver ----------------------------------------------------------------


class Settings(Config):
    limit: int = 10


@task
def one() -> int:
    return 1


def _body() -> None:
    """A job body for the option checks."""


def test_section_defaults_to_the_module_name_and_spec_and_deliver_are_kept() -> None:
    target = object()

    @job(spec=Settings, deliver=target)
    def load() -> None: ...

    @workflow(section="sources")
    def flow() -> None:
        one()

    assert load.options.section == "test_job_expose"  # the last part of the module's name
    assert load.options.spec is Settings
    assert load.options.deliver is target
    assert flow.options.section == "sources"
    assert flow.options.spec is None
    assert flow.options.deliver is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"section": "my section"}, "section='my section' must be a Python identifier"),
        ({"spec": dict}, "must be a config class"),
        ({"deliver": "my_pipeline"}, "deliver='my_pipeline' must be the object"),
    ],
)
def test_bad_section_spec_deliver_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        job(**options)(_body)


# -- expose --------------------------------------------------------------------------------


def test_expose_is_stored_and_tags_become_tag_triggers() -> None:
    @job(
        trigger="every:1h",
        expose={"tags": ["finance", "daily"], "starred": True, "manual": False},
        display_name="Simple Data Pipeline",
    )
    def prices() -> None: ...

    e = prices.options.expose
    assert (e.tags, e.starred, e.manual) == (("finance", "daily"), True, False)
    assert prices.display_name == e.display_name == "Simple Data Pipeline"
    assert prices.name == "prices"
    assert [str(t) for t in prices.triggers] == ["every:1h", "tag:finance", "tag:daily"]
    assert e.as_dict() == {
        "tags": ["finance", "daily"],
        "starred": True,
        "manual": False,
        "display_name": "Simple Data Pipeline",
    }


def test_expose_defaults_and_display_name_inside_expose() -> None:
    @workflow(expose={"display_name": "Nightly load"})
    def nightly() -> None:
        one()

    @job
    def plain() -> None: ...

    assert nightly.display_name == "Nightly load"
    assert plain.display_name == "plain"
    e = plain.options.expose
    assert (e.tags, e.starred, e.manual, e.display_name) == ((), False, True, None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expose": {"stared": True}}, r"unknown expose key\(s\) 'stared'; known: tags, starred"),
        ({"expose": ["tags"]}, "expose=\\['tags'\\] must be a dict"),
        ({"expose": {"tags": "finance"}}, "expose tags='finance' must be a list of strings"),
        ({"expose": {"tags": ["a:b"]}}, "without ':' or '\\?'"),
        ({"expose": {"starred": "yes"}}, "expose starred='yes' must be True or False"),
        ({"expose": {"manual": 0}}, "expose manual=0 must be True or False"),
        ({"display_name": ""}, "display_name='' must be a non-empty string"),
        (
            {"display_name": "A", "expose": {"display_name": "B"}},
            "display_name='A' and expose display_name='B' differ",
        ),
    ],
)
def test_bad_expose_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        job(**options)(_body)


# -- require -------------------------------------------------------------------------------


def test_require_is_recorded_and_machine_normalized() -> None:
    @job(
        schedule="0 8 * * *",
        require={
            "timezone": "Europe/Berlin",
            "profile": "prod",
            "machine": "2cpu-8gb",
            "region": "eu-west-1",
            "dependency_groups": ["dask"],  # declared in this project's pyproject, installed
        },
    )
    def daily() -> None: ...

    r = daily.options.require
    assert r["profile"] == "prod"
    assert r["region"] == "eu-west-1"
    assert r["machine"] == {"cpu": 2.0, "memory": 8_000_000_000}
    assert r["dependency_groups"] == ["dask"]
    assert daily.triggers[0].timezone == "Europe/Berlin"

    @job(require={"machine": {"cpu": 0.5, "memory": "512Mi"}})
    def small() -> None: ...

    assert small.options.require["machine"] == {"cpu": 0.5, "memory": 512 * 2**20}


@pytest.mark.parametrize(
    ("require", "message"),
    [
        ({"gpu": 1}, r"unknown require key\(s\) 'gpu'; known: timezone, dependency_groups"),
        ({"profile": "my profile"}, "require profile='my profile' must be a profile name"),
        ({"profile": 3}, "require profile=3 must be a non-empty string"),
        ({"region": ""}, "require region='' must be a non-empty string"),
        ({"machine": "big"}, "require machine='big': write it as '2cpu-8gb'"),
        ({"machine": {"cpu": -1}}, "require machine cpu=-1 must be a number of cores > 0"),
        ({"machine": {"memory": "lots"}}, "require machine memory='lots'"),
        ({"machine": {"disk": "1g"}}, r"unknown require machine key\(s\) 'disk'"),
        ({"dependency_groups": "dask"}, "must be a list of group names"),
        ({"dependency_groups": ["nope"]}, "declares no group 'nope' \\(its groups: .*dask"),
        ({"timezone": "Mars/Olympus"}, "require=\\{'timezone': 'Mars/Olympus'\\}"),
    ],
)
def test_bad_require_is_refused(require: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        job(require=require)(_body)


def _job_in(folder: Path, pyproject: str | None, groups: list[str]) -> None:
    """Define a job whose source file lives in ``folder`` (beside an optional pyproject)."""
    if pyproject is not None:
        (folder / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    source = f"@job(require={{'dependency_groups': {groups!r}}})\ndef load():\n    pass\n"
    code = compile(source, str(folder / "jobs.py"), "exec")
    exec(code, {"job": job})


def test_dependency_groups_must_be_declared_and_installed(tmp_path: Path) -> None:
    project = """
        [project]
        name = "x"
        [project.optional-dependencies]
        fast = ["pydantic>=2"]
        [dependency-groups]
        exotic = ["surely-not-installed-pkg>=1", "pydantic"]
    """
    _job_in(tmp_path, project, ["fast"])
    with pytest.raises(DefinitionError, match="needs surely-not-installed-pkg>=1, not installed"):
        _job_in(tmp_path, None, ["exotic"])
    with pytest.raises(
        DefinitionError, match="declares no group 'slow' \\(its groups: exotic, fast"
    ):
        _job_in(tmp_path, None, ["slow"])


# -- allow_external_schedulers -------------------------------------------------------------


def test_allow_external_schedulers_is_incremental_mode_interval() -> None:
    span = {"start": "2026-01-01", "end": None}

    @job(schedule="@daily", interval=span, allow_external_schedulers=True)
    def walked() -> None: ...

    assert walked.incremental_mode == "interval"
    both = {"incremental_mode": "interval", "allow_external_schedulers": True}
    assert job(schedule="@daily", interval=span, **both)(_body).incremental_mode == "interval"
    with pytest.raises(DefinitionError, match="incremental_mode='latest' was given too"):
        job(
            schedule="@daily",
            interval=span,
            incremental_mode="latest",
            allow_external_schedulers=True,
        )(_body)
    with pytest.raises(DefinitionError, match="allow_external_schedulers='yes' must be True"):
        job(allow_external_schedulers="yes")(_body)  # type: ignore[typeddict-item]


# -- manual=False --------------------------------------------------------------------------


def test_manual_false_refuses_job_run_with_the_reason() -> None:
    @workflow(trigger="every:1h", expose={"manual": False})
    def guarded() -> None:
        one()

    with pytest.raises(ExecutionError) as caught:
        guarded.run()
    message = str(caught.value)
    assert "job 'guarded' cannot be run manually (job.run())" in message
    assert "manual=False" in message
    assert "every:1h" in message


WORKSPACE = """
from conveyor import job, task, workflow

@task
def one():
    return 1

@workflow(trigger="every:1h", expose={"manual": False, "tags": ["guarded"]})
def guarded():
    one()

@workflow(expose={"tags": ["guarded"]})
def open_one():
    one()
"""


def _conveyor(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_URL", "CONVEYOR_DEBUG"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "--local", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_manual_false_refuses_conveyor_run_and_trigger(tmp_path: Path) -> None:
    (tmp_path / "pipes.py").write_text(WORKSPACE)
    home = tmp_path / "home"
    ran = _conveyor(home, tmp_path, "run", "pipes.py", "guarded")
    assert ran.returncode != 0
    assert "job 'guarded' cannot be run manually (conveyor run)" in ran.stderr
    triggered = _conveyor(home, tmp_path, "trigger", "pipes.py", "guarded")
    assert triggered.returncode != 0
    assert "cannot be run manually (conveyor trigger guarded)" in triggered.stderr
    # A tag's fan-out leaves the guarded job out and queues the others.
    fanned = _conveyor(home, tmp_path, "trigger", "pipes.py", "tag:guarded")
    assert fanned.returncode == 0, fanned.stderr
    assert "guarded: skipped, its expose says manual=False" in fanned.stderr
    assert len(fanned.stdout.split()) == 1
    assert _conveyor(home, tmp_path, "run", "pipes.py", "open_one").returncode == 0


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, WORKSPACE)


def test_manual_false_refuses_post_api_runs_but_scheduled_runs_go_on(api: Api) -> None:
    message = api.error("POST", "/api/runs", 409, {"job_name": "guarded"})
    assert "job 'guarded' cannot be run manually (a launch from the API or the UI)" in message
    assert api.get("/api/runs")["runs"] == []
    job_ = api.state.workspace.job("guarded")
    scheduled = api.instance.run_store.create(
        job_name="guarded",
        job_version=job_.version,
        status=RunStatus.QUEUED,
        trigger="every:1h",
    )
    api.start_queued()
    assert api.get(f"/api/runs/{scheduled.id}")["status"] == "success"


SHOWN = """
from conveyor import job

@job(expose={"starred": True, "display_name": "Simple Data Pipeline"})
def zebra():
    pass

@job(trigger="every:1h", expose={"manual": False})
def apple():
    pass
"""


def test_the_ui_and_api_show_expose(tmp_path: Path) -> None:
    """Starred jobs come first, with their display names; a job without manual runs has
    no launch button, and its page says why."""
    for api_ in make_api(tmp_path, SHOWN):
        jobs = api_.get("/api/jobs")
        assert [j["name"] for j in jobs] == ["zebra", "apple"]
        assert jobs[0]["display_name"] == "Simple Data Pipeline"
        assert jobs[0]["starred"] is True
        assert jobs[1]["manual"] is False
        listing = api_.client.get("/jobs").text
        assert "Simple Data Pipeline" in listing
        assert 'href="/jobs/zebra/launch"' in listing
        assert 'href="/jobs/apple/launch"' not in listing
        page = api_.client.get("/jobs/apple").text
        assert "No manual runs (expose manual=False)" in page
