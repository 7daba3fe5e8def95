"""Deploying, and loading a version's jobs: side by side, scoped to an environment."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, NotFoundError, WorkspaceError
from conveyor.execution import environments
from conveyor.execution.code_cache import cache_root
from conveyor.execution.deploy import deploy, versions
from conveyor.execution.environments import environment_workspace, version_workspace
from conveyor.storage.instance import Instance

PIPELINES = """
from conveyor import RetryPolicy, Schedule, sensor, task, workflow

@task
def say():
    return "{text}"

@workflow(trigger="every:1h", tags={{"team": "data"}}, retry=RetryPolicy(max_retries=2))
def etl():
    say()

@workflow(trigger=[etl.success, *etl.completed, "job.fail:elsewhere"], freshness=[etl.is_fresh])
def report():
    say()

@workflow(schedule=Schedule(run_after_job_name="etl"))
def after():
    say()

@sensor(job=etl, interval=60)
def new_files():
    return None
"""


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    instance = Instance.at(tmp_path / "home")
    yield instance
    instance.close()


def _write(folder: Path, text: str, name: str = "pipelines.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_identical_code_makes_no_new_version(inst: Instance, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="one"))
    first = deploy(inst, path, "dev", message="first", by="ann")
    assert (first.created, first.activated) == (True, True)
    assert first.summary() == "version 1 (new) active in dev: 3 jobs added"
    assert first.version.created_by == "ann"
    assert first.version.message == "first"
    assert first.version.archive_uri == f"code/{first.version.hash}.tar.gz"
    again = deploy(inst, path, "dev")
    assert (again.created, again.activated) == (False, False)
    assert again.version.number == 1
    assert again.summary() == "no change: version 1 is active in dev already"
    assert [v.number for v in versions(instance=inst)] == [1]
    # The same code in another environment is the same version, activated there.
    pre = deploy(inst, path, "pre")
    assert (pre.created, pre.activated, pre.version.number) == (False, True, 1)
    assert pre.summary() == "version 1 (deployed before) active in pre"


def test_changed_task_code_is_a_new_version_with_a_diff(inst: Instance, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="one"))
    deploy(inst, path, "dev")
    _write(tmp_path / "ws", PIPELINES.format(text="two") + "\n@workflow\ndef extra():\n    say()\n")
    second = deploy(inst, path, "dev", message="say two")
    assert second.version.number == 2
    assert second.version.diff == {
        "added": ["extra"],
        "changed": ["after", "etl", "report"],
        "removed": [],
    }
    assert second.summary() == "version 2 (new) active in dev: 1 job added, 3 changed"
    m = second.version.manifest["jobs"]["report"]
    assert m["triggers"] == ["job.success:etl", "job.fail:etl", "job.fail:elsewhere"]
    assert m["tasks"] == ["say"]
    assert m["kind"] == "workflow"
    assert inst.deployments.active("dev") == second.version
    assert [v.number for v in versions("dev", instance=inst)] == [2, 1]
    assert versions("pre", instance=inst) == []


def test_a_bad_environment_is_refused_naming_the_ones_there_are(
    inst: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="one"))
    with pytest.raises(ConfigError, match=r"no environment 'production': .* dev, pre, prod"):
        deploy(inst, path, "production")
    with pytest.raises(ConfigError, match="no environment 'local'"):
        versions("local", instance=inst)
    monkeypatch.setenv("CONVEYOR_ENVIRONMENTS", "test,live")
    assert deploy(inst, path, "live").activated
    with pytest.raises(ConfigError, match="the environments are test, live"):
        deploy(inst, path, "dev")
    assert inst.deployments.latest() is not None


def test_code_that_fails_to_load_is_refused_and_nothing_stored(
    inst: Instance, tmp_path: Path
) -> None:
    path = _write(tmp_path / "ws", "from conveyor import workflow\n\nraise RuntimeError('boom')\n")
    with pytest.raises(WorkspaceError, match=r"(?s)fails to load.*Traceback.*RuntimeError: boom"):
        deploy(inst, path, "dev")
    assert inst.deployments.latest() is None
    assert inst.blobs.under("code") == []


def test_two_versions_of_one_file_load_side_by_side(inst: Instance, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="one"))
    deploy(inst, path, "dev")
    _write(tmp_path / "ws", PIPELINES.format(text="two"))
    deploy(inst, path, "dev")
    w1, w2 = version_workspace(inst, 1), version_workspace(inst, 2)
    e1, e2 = w1.job("etl"), w2.job("etl")
    assert e1.fn.__module__ != e2.fn.__module__
    assert e1.fn.__module__.endswith(".conveyor_workspace_pipelines")  # config section kept
    assert e1.run(instance=inst).output("say") == "one"
    assert e2.run(instance=inst).output("say") == "two"
    assert e1.run(instance=inst).output("say") == "one"
    assert w1.origin == {"version": 1}
    assert w2.origin == {"version": 2}
    assert version_workspace(inst, 1) is w1  # loaded once per process


def test_a_versions_plain_imports_are_its_own(inst: Instance, tmp_path: Path) -> None:
    job = """
    from conveyor import task, workflow
    import helpers

    @task
    def say():
        return helpers.VALUE

    @workflow
    def hello():
        say()
    """
    path = _write(tmp_path / "ws", job)
    _write(tmp_path / "ws", "VALUE = 'helper one'\n", "helpers.py")
    deploy(inst, path, "dev")
    _write(tmp_path / "ws", "VALUE = 'helper two'\n", "helpers.py")
    deploy(inst, path, "dev")
    h1 = version_workspace(inst, 1).job("hello")
    h2 = version_workspace(inst, 2).job("hello")
    assert h1.run(instance=inst).output("say") == "helper one"
    assert h2.run(instance=inst).output("say") == "helper two"


def test_the_version_loads_after_the_workspace_folder_is_deleted(
    inst: Instance, tmp_path: Path
) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="kept"))
    deploy(inst, path, "prod")
    shutil.rmtree(tmp_path / "ws")
    shutil.rmtree(cache_root(inst))  # another machine: nothing unpacked yet
    environments._loaded.clear()  # another process
    ws = environment_workspace(inst, "prod")
    assert ws.job("prod.etl").run(instance=inst).output("say") == "kept"


def test_an_environment_scopes_jobs_and_their_references(inst: Instance, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", PIPELINES.format(text="one"))
    deploy(inst, path, "prod")
    ws = environment_workspace(inst, "prod")
    assert ws.origin == {"environment": "prod", "version": 1}
    assert sorted(ws.jobs) == ["prod.after", "prod.etl", "prod.report"]
    etl, report, after = ws.jobs["prod.etl"], ws.jobs["prod.report"], ws.jobs["prod.after"]
    assert etl.name == "prod.etl"
    assert etl.display_name == "etl"
    assert [str(t) for t in etl.triggers] == ["every:1h"]
    assert etl.tags == {"team": "data"}
    assert etl.retry.max_retries == 2
    assert etl.graph is not None
    assert list(etl.graph.nodes) == ["say"]
    assert [str(t) for t in report.triggers] == [
        "job.success:prod.etl",
        "job.fail:prod.etl",
        "job.fail:elsewhere",  # not a job of the workspace: left as it is
    ]
    assert [str(g) for g in report.freshness] == ["job.is_fresh:prod.etl"]
    assert report.options.freshness == report.freshness
    assert [str(t) for t in after.triggers] == ["job.success:prod.etl"]
    assert [(s.name, s.job_name) for s in ws.sensors.values()] == [("prod.new_files", "prod.etl")]
    # The unscoped version is untouched.
    plain = version_workspace(inst, 1)
    assert next(str(t) for t in plain.job("report").triggers) == "job.success:etl"
    assert plain.sensors["new_files"].job_name == "etl"
    assert environment_workspace(inst, "prod") is ws
    assert environment_workspace(inst, "dev", 1).job("dev.etl").name == "dev.etl"


def test_an_environment_without_a_version_says_how_to_deploy(inst: Instance) -> None:
    with pytest.raises(NotFoundError, match=r"no version is active in 'pre'.*--env pre"):
        environment_workspace(inst, "pre")
    with pytest.raises(NotFoundError, match="no version 4: no version has been deployed"):
        version_workspace(inst, 4)


def test_a_scoped_name_over_255_characters_is_refused(inst: Instance, tmp_path: Path) -> None:
    long = "j" * 251
    path = _write(
        tmp_path / "ws",
        f"from conveyor import task, workflow\n\n@task\ndef t():\n    return 1\n\n"
        f"@workflow(name={long!r})\ndef w():\n    t()\n",
    )
    deploy(inst, path, "dev")
    with pytest.raises(WorkspaceError, match=rf"job '{long}' cannot be deployed to 'prod'"):
        environment_workspace(inst, "prod", 1)
    assert len(environment_workspace(inst, "dev", 1).job(f"dev.{long}").name) == 255
    with pytest.raises(WorkspaceError, match=rf"job '{long}' cannot be deployed to 'prod'"):
        deploy(inst, path, "prod")  # refused before it is recorded there
    assert inst.deployments.active("prod") is None


def test_a_versions_tasks_run_in_worker_processes(inst: Instance, tmp_path: Path) -> None:
    code = """
    from conveyor import Config, task, workflow

    class Cfg(Config):
        n: int = 3

    @task
    def say(cfg: Cfg):
        return ("{text}", cfg.n)

    @workflow
    def hello():
        say()
    """
    path = _write(tmp_path / "ws", code.format(text="one"))
    deploy(inst, path, "dev")
    _write(tmp_path / "ws", code.format(text="two"))
    deploy(inst, path, "dev")
    for number, text in ((1, "one"), (2, "two")):
        job = environment_workspace(inst, "dev", number).job("dev.hello")
        run = job.run(instance=inst, executor="multiprocess")
        assert run.output("say") == (text, 3)
