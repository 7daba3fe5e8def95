"""The dlt seed (``seeds/000_*.txt``: dlt's workspace job decorators), written in Conveyor.

One test per capability the seed documents: ``@job`` and each of its parameters,
``@interactive``, ``@pipeline_run``, and the ``JobFactory`` members (``completed``,
``is_fresh``, ``is_matching_interval_fresh``, ``bind``, ``to_job_definition``). Each job
is written as in dlt, under the same names where Conveyor keeps them, and run: in
process with ``job.run()``, by the real ``conveyor`` command, or by the scheduler
daemon for triggers, intervals and freshness gates. ``docs/porting.md`` (the dlt
section) has the table this module follows.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import signal
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from conveyor import (
    Config,
    ConfigError,
    DefinitionError,
    Instance,
    Interactive,
    InteractiveContext,
    RunContext,
    RunStatus,
    interactive,
    job,
    pipeline_run,
)
from conveyor.errors import ExecutionError
from conveyor.execution.launch import execute_run
from conveyor.execution.state import REFRESH_TAG
from conveyor.scheduler.daemon import Daemon
from conveyor.scheduler.freshness import blocked_by
from conveyor.workspace import Workspace, load_file
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

# -- helpers --------------------------------------------------------------------------------


def _workspace(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


@contextmanager
def _daemon(workspace: Path, home: Path) -> Iterator[tuple[Workspace, Instance, list[float]]]:
    """The real daemon on ``workspace`` in a thread; yields the passes it made so far."""
    instance = Instance.at(home)
    ws = load_file(workspace)
    daemon = Daemon(ws, instance)
    passes: list[float] = []
    daemon.steps.append(("count passes", passes.append))
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: passes, 30, "the daemon's first pass")
        yield ws, instance, passes
    finally:
        stop.set()
        thread.join(timeout=10)
        daemon.reap(wait=10)
        instance.close()


def _queue(ws: Workspace, instance: Instance, name: str) -> str:
    """Queue a run of ``name`` as ``conveyor trigger`` does."""
    j = ws.job(name)
    return instance.run_store.create(
        job_name=name,
        job_version=j.version,
        status=RunStatus.QUEUED,
        origin={**ws.origin, "job": name},
    ).id


def _ended(instance: Instance, name: str) -> list[Any]:
    return [r for r in instance.runs(name, limit=100) if r.status.is_terminal]


# -- @job: func, name ------------------------------------------------------------------------


def test_job_bare_and_with_arguments() -> None:
    """``@job`` with no arguments and ``@job(name=...)``; the name defaults to the function's."""

    @job
    def daily_report() -> str:
        return "done"

    @job(name="renamed_report")
    def report() -> str:
        return "renamed"

    assert daily_report.name == "daily_report"
    assert daily_report.run().output("daily_report") == "done"
    assert report.name == "renamed_report"
    assert report.run().output("renamed_report") == "renamed"
    with pytest.raises(DefinitionError, match="a job name may hold letters"):
        job(name="bad/name")(lambda: None)


def test_job_factory_bind_preserves_the_function() -> None:
    """``JobFactory.bind``: the wrapper keeps the function, its signature and its result."""

    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    wrapped = job(add)
    assert wrapped.__wrapped__ is add
    assert inspect.signature(wrapped) == inspect.signature(add)
    assert wrapped.__doc__ == add.__doc__
    assert wrapped(1, b=5) == 6  # called directly, it is the function
    assert wrapped.run({"config": {"a": 1}}).output("add") == 3  # run, its parameters are config


def test_job_async_function() -> None:
    """``JobFactory`` supports async functions: the run awaits the body."""

    @job
    async def fetch(context: RunContext) -> str:
        await asyncio.sleep(0)
        return f"fetched by {context.job_name}"

    assert fetch.run().output("fetch") == "fetched by fetch"


# -- section, config injection, spec ----------------------------------------------------------

LOOKUP = [
    "JOBS__CRM__INGEST__LIMIT",
    "JOBS__CRM__LIMIT",
    "JOBS__INGEST__LIMIT",
    "JOBS__LIMIT",
    "LIMIT",
]


@pytest.mark.parametrize("level", range(len(LOOKUP)))
def test_section_and_config_injection_lookup_order(
    level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``section=`` and dlt's key order: a key set at ``level`` wins over every less
    specific one, and loses to every more specific one."""

    @job(section="crm")
    def ingest(limit: int) -> int:
        return limit

    for i, name in enumerate(LOOKUP):
        if i >= level:
            monkeypatch.setenv(name, str(100 + i))
    assert ingest.run().output("ingest") == 100 + level


def test_section_defaults_to_the_module_name_and_a_missing_key_lists_the_keys_tried() -> None:
    @job
    def ingest(api_key: SecretStr) -> int:
        return len(api_key.get_secret_value())

    assert ingest.options.section == "test_seed_000_dlt"
    with pytest.raises(ConfigError) as missing:
        ingest.run()
    tried = re.findall(r"env (\w+)", str(missing.value))
    assert tried == [
        "JOBS__TEST_SEED_000_DLT__INGEST__API_KEY",
        "JOBS__TEST_SEED_000_DLT__API_KEY",
        "JOBS__INGEST__API_KEY",
        "JOBS__API_KEY",
        "API_KEY",
    ]


class ApiSpec(Config):
    """A config spec class, as dlt's ``BaseConfiguration``."""

    api_key: SecretStr
    limit: int = 100


def test_spec_is_the_config_model_of_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """``spec=``: the function's parameters are the spec's fields, injected from providers."""

    @job(section="crm", spec=ApiSpec)
    def ingest(api_key: SecretStr, limit: int) -> str:
        return f"{api_key.get_secret_value()}:{limit}"

    @job(section="crm", spec=ApiSpec)
    def by_context(context: RunContext) -> int:
        assert isinstance(context.config, ApiSpec)
        return context.config.limit

    monkeypatch.setenv("JOBS__CRM__API_KEY", "sk-1")
    assert ingest.config_model is ApiSpec
    assert ingest.run().output("ingest") == "sk-1:100"
    assert ingest.run({"config": {"limit": 5}}).output("ingest") == "sk-1:5"
    assert (
        by_context.run({"config": ApiSpec(api_key=SecretStr("x"), limit=7)}).output("by_context")
        == 7
    )
    schema = ingest.to_job_definition()["config"]
    assert schema["keys"] == ["api_key", "limit"]
    assert schema["spec"]["required"] == ["api_key"]
    with pytest.raises(ConfigError, match="input should be a valid integer"):
        ingest.run({"config": {"limit": "many"}})


def test_spec_with_parameters_that_are_not_its_fields() -> None:
    @job(spec=ApiSpec)
    def ingest(api_key: SecretStr, batch: int = 3) -> int:
        return batch

    assert issubclass(ingest.config_model, ApiSpec)  # type: ignore[arg-type]
    assert ingest.run({"config": {"api_key": "k", "batch": 4}}).output("ingest") == 4
    with pytest.raises(DefinitionError, match="must be a config class"):
        job(name="bad_spec", spec=dict)(lambda: None)

    class Connection:
        """Not a type pydantic validates."""

    def load(conn: Connection) -> None: ...

    with pytest.raises(DefinitionError, match="parameters conn are not fields of spec ApiSpec"):
        job(spec=ApiSpec)(load)


# -- trigger ----------------------------------------------------------------------------------


def test_trigger_one_string_a_trigger_value_or_a_list() -> None:
    """Every trigger type of dlt's grammar parses; a bad one names the fix."""

    @job
    def up() -> None: ...

    forms: dict[str, Any] = {
        "every:1h": ["every:1h"],
        "0 8 * * *": ["schedule:0 8 * * *"],
        "schedule:@daily": ["schedule:@daily"],
        "once:2026-12-01T00:00:00Z": ["once:2026-12-01T00:00:00Z"],
        "manual": ["manual"],
        "tag:finance": ["tag:finance"],
        "webhook:orders": ["webhook:orders"],
        "http:/refresh": ["http:/refresh"],
        "deployment": ["deployment"],
        up.success: ["job.success:up"],
        up.fail: ["job.fail:up"],
        "job.completed:up": ["job.completed:up"],
    }
    for trigger, expected in forms.items():
        made = job(name="down", trigger=trigger)(lambda: None)
        assert [str(t) for t in made.triggers] == expected, trigger
    both = job(name="down", trigger=[*up.completed, "every:1d"])(lambda: None)
    assert [str(t) for t in both.triggers] == ["job.success:up", "job.fail:up", "every:1d"]
    assert up.completed == ("job.success:up", "job.fail:up")
    with pytest.raises(DefinitionError, match="Invalid trigger 'every:soon'"):
        job(name="bad", trigger="every:soon")(lambda: None)


def test_completed_fires_on_success_and_on_failure(tmp_path: Path, home: Path) -> None:
    """``trigger=up.completed``: the downstream runs after each end of ``up``, either way."""
    path = _workspace(
        tmp_path,
        "chain",
        """
        from conveyor import RunContext, job


        @job(execute={"concurrency": None})
        def up(fail: bool = False) -> None:
            if fail:
                raise RuntimeError("up failed")


        @job(trigger=up.completed, execute={"concurrency": None})
        def down() -> str:
            return "after up"
        """,
    )
    with _daemon(path, home) as (ws, instance, _):
        _queue(ws, instance, "up")
        wait_until(lambda: len(_ended(instance, "down")) == 1, 60, "down after up succeeded")
        failing = instance.run_store.create(
            job_name="up",
            job_version=ws.job("up").version,
            status=RunStatus.QUEUED,
            run_config={"config": {"fail": True}},
            origin={**ws.origin, "job": "up"},
        )
        wait_until(lambda: len(_ended(instance, "down")) == 2, 60, "down after up failed")
        assert instance.run(failing.id).status is RunStatus.FAILURE
        downs = _ended(instance, "down")
        assert all(r.status is RunStatus.SUCCESS for r in downs)
        assert sorted(r.trigger for r in downs) == ["job.fail:up", "job.success:up"]


# -- execute ----------------------------------------------------------------------------------


def test_execute_timeout_and_concurrency() -> None:
    """``execute``: timeout as seconds or a human string; concurrency 1 unless given, None
    for no limit."""

    def body() -> None: ...

    assert job(name="a")(body).execute.concurrency == 1
    assert job(name="b", execute={"timeout": "4h"})(body).execute.timeout == 4 * 3600
    assert job(name="c", execute={"timeout": 90})(body).execute.timeout == 90
    assert job(name="d", execute={"concurrency": None})(body).execute.concurrency is None
    assert job(name="e", execute={"concurrency": 3})(body).execute.concurrency == 3
    with pytest.raises(DefinitionError, match="concurrency=0 must be a whole number >= 1"):
        job(name="f", execute={"concurrency": 0})(body)
    with pytest.raises(DefinitionError, match="invalid execute timeout"):
        job(name="g", execute={"timeout": "soon"})(body)


def test_execute_timeout_as_dlt_manifest_dict() -> None:
    """dlt's expanded ``TTimeoutSpec``: ``{"timeout": seconds}`` is the timeout; a
    ``grace_period`` (not set per job in Conveyor) and unknown keys are refused."""

    def body() -> None: ...

    expanded = job(name="a", execute={"timeout": {"timeout": 3600.0}, "concurrency": 2})(body)
    assert (expanded.execute.timeout, expanded.execute.concurrency) == (3600.0, 2)
    assert job(name="b", execute={"timeout": {"timeout": "4h"}})(body).execute.timeout == 14400
    with pytest.raises(DefinitionError, match="grace_period=30 is not taken"):
        job(name="c", execute={"timeout": {"timeout": 60, "grace_period": 30}})(body)
    with pytest.raises(DefinitionError, match="has no 'timeout'"):
        job(name="d", execute={"timeout": {}})(body)
    with pytest.raises(DefinitionError, match=r"unknown execute timeout key.*'grace'"):
        job(name="e", execute={"timeout": {"timeout": 60, "grace": 1}})(body)
    with pytest.raises(DefinitionError, match="invalid execute timeout"):
        job(name="f", execute={"timeout": {"timeout": "later"}})(body)


def test_execute_timeout_stops_a_run(tmp_path: Path, home: Path) -> None:
    path = _workspace(
        tmp_path,
        "slow",
        """
        import time

        from conveyor import job


        @job(execute={"timeout": "1s"})
        def slow() -> None:
            time.sleep(60)
        """,
    )
    with _daemon(path, home) as (ws, instance, _):
        run_id = _queue(ws, instance, "slow")
        wait_until(lambda: instance.run(run_id).status.is_terminal, 40, "the run to be stopped")
        assert instance.run(run_id).status is RunStatus.CANCELED
        assert "run_timeout" in [e.kind for e in instance.run_details(run_id).events]


# -- expose -----------------------------------------------------------------------------------

EXPOSED = """
from conveyor import job


@job(expose={"tags": ["finance"], "starred": True, "manual": False, "display_name": "Prices"})
def prices() -> str:
    return "prices"


@job(expose={"tags": ["finance"]})
def rates() -> str:
    return "rates"
"""


def test_expose_tags_starred_and_manual(tmp_path: Path) -> None:
    """``expose``: tags are ``tag:`` triggers, starred and display_name are shown, and
    ``manual=False`` refuses manual runs while ``tag:`` fan-outs leave the job out."""
    path = _workspace(tmp_path, "exposed", EXPOSED)
    ws = load_file(path)
    prices = ws.job("prices")
    assert [str(t) for t in prices.triggers] == ["tag:finance"]
    assert prices.options.expose.starred is True
    assert prices.display_name == "Prices"
    with pytest.raises(ExecutionError, match="cannot be run manually"):
        prices.run()

    env = home_env(tmp_path / "home")
    refused = conveyor(env, "run", str(path), "prices")
    assert refused.returncode != 0
    assert "cannot be run manually (conveyor run)" in refused.stderr
    fanned = conveyor(env, "trigger", str(path), "tag:finance")
    assert fanned.returncode == 0, fanned.stderr
    assert "prices: skipped, its expose says manual=False" in fanned.stderr
    instance = Instance.at(tmp_path / "home")
    try:
        [queued] = instance.runs(limit=10)
        assert queued.job_name == "rates"
        assert queued.trigger == "tag:finance"
    finally:
        instance.close()


# -- require ----------------------------------------------------------------------------------


def test_require_profile_machine_region_and_dependency_groups(tmp_path: Path) -> None:
    """``require``: the profile picks the config files; machine and region are recorded;
    a dependency group the project does not declare is refused when the job is defined."""
    path = _workspace(
        tmp_path,
        "required",
        """
        from conveyor import job


        @job(require={"profile": "prod", "machine": "2cpu-8gb", "region": "eu-west-1"})
        def load(target: str) -> str:
            return target
        """,
    )
    (tmp_path / ".conveyor").mkdir()
    (tmp_path / ".conveyor" / "config.toml").write_text('target = "dev-db"\n')
    (tmp_path / ".conveyor" / "prod.config.toml").write_text('target = "prod-db"\n')
    load = load_file(path).job("load")
    assert load.options.require["machine"] == {"cpu": 2.0, "memory": 8_000_000_000}
    assert load.options.require["region"] == "eu-west-1"
    assert load.run().output("load") == "prod-db"
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\n[dependency-groups]\nwarehouse = []\n'
    )
    with pytest.raises(DefinitionError, match="declares no group 'lake'"):
        job(name="lake_load", require={"dependency_groups": ["lake"]})(
            _defined_in(tmp_path / "lake.py")
        )


def _defined_in(file: Path) -> Any:
    """A function whose source file is ``file`` (the project of the pyproject beside it)."""
    file.write_text("def lake_load() -> None: ...\n")
    namespace: dict[str, Any] = {}
    exec(compile(file.read_text(), str(file), "exec"), namespace)
    return namespace["lake_load"]


# -- interval, allow_external_schedulers -------------------------------------------------------


def test_interval_is_walked_one_period_per_run(tmp_path: Path, home: Path) -> None:
    """``interval=`` with ``allow_external_schedulers=True``: the scheduler hands each run
    its hour, from the interval's start to its end."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = hour - timedelta(hours=3)
    path = _workspace(
        tmp_path,
        "walked",
        f"""
        from conveyor import RunContext, job


        @job(
            trigger="every:1h",
            interval={{"start": "{start.isoformat()}", "end": "{hour.isoformat()}"}},
            allow_external_schedulers=True,
        )
        def hourly(context: RunContext) -> list[str]:
            assert context.interval is not None
            return [context.interval.start.isoformat(), context.interval.end.isoformat()]
        """,
    )
    assert load_file(path).job("hourly").incremental_mode == "interval"
    hours = [start + timedelta(hours=n) for n in range(3)]
    with _daemon(path, home) as (_, instance, _passes):
        wait_until(lambda: len(_ended(instance, "hourly")) == 3, 90, "three hourly runs")
        runs = sorted(_ended(instance, "hourly"), key=lambda r: r.interval_start)
        assert [r.interval_start for r in runs] == hours
        for run, begin in zip(runs, hours, strict=True):
            assert run.status is RunStatus.SUCCESS
            assert instance.result(run.id, "hourly") == [
                begin.isoformat(),
                (begin + timedelta(hours=1)).isoformat(),
            ]


# -- freshness, refresh -----------------------------------------------------------------------


def test_is_fresh_holds_a_run_until_its_upstream_completes(tmp_path: Path, home: Path) -> None:
    path = _workspace(
        tmp_path,
        "fresh",
        """
        from conveyor import job


        @job(execute={"concurrency": None})
        def source() -> int:
            return 1


        @job(freshness=source.is_fresh, execute={"concurrency": None})
        def report() -> int:
            return 2
        """,
    )
    with _daemon(path, home) as (ws, instance, passes):
        gated = _queue(ws, instance, "report")
        seen = len(passes)
        wait_until(lambda: len(passes) >= seen + 10, 30, "10 daemon passes")
        assert instance.run(gated).status is RunStatus.QUEUED
        upstream = _queue(ws, instance, "source")
        wait_until(lambda: instance.run(gated).status is RunStatus.SUCCESS, 60, "the gated run")
        up_ended = instance.run(upstream).ended_at
        down_started = instance.run(gated).started_at
        assert up_ended is not None
        assert down_started is not None
        assert down_started >= up_ended


def test_is_matching_interval_fresh_waits_for_the_covering_intervals(instance: Instance) -> None:
    @job(schedule="0 6 * * *")
    def upstream() -> None: ...

    @job(trigger="every:1d", freshness=[upstream.is_matching_interval_fresh])
    def downstream() -> None: ...

    def ts(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    def upstream_covered(start: str, end: str) -> None:
        run = instance.run_store.create(
            job_name="upstream",
            job_version="v",
            then=RunStatus.RUNNING,
            interval=(ts(start), ts(end)),
        )
        instance.run_store.set_status(run.id, RunStatus.SUCCESS)

    day = (ts("2026-01-10T00:00:00"), ts("2026-01-11T00:00:00"))
    run = instance.run_store.create(
        job_name="downstream", job_version="v", status=RunStatus.QUEUED, interval=day
    )
    jobs = {"upstream": upstream, "downstream": downstream}
    now = ts("2026-01-11T12:00:00")
    upstream_covered("2026-01-10T00:00:00", "2026-01-10T12:00:00")
    gate = blocked_by(instance, run, downstream, jobs, now)
    assert str(gate) == "job.is_matching_interval_fresh:upstream"
    upstream_covered("2026-01-10T12:00:00", "2026-01-11T00:00:00")
    assert blocked_by(instance, run, downstream, jobs, now) is None


def test_refresh_policies() -> None:
    """``refresh``: auto (default), always, block; anything else is refused."""

    def body() -> None: ...

    assert job(name="a")(body).refresh == "auto"
    assert job(name="b", refresh="always")(body).refresh == "always"
    assert job(name="c", refresh="block")(body).refresh == "block"
    with pytest.raises(DefinitionError, match="refresh='sometimes' must be one of"):
        job(name="d", refresh="sometimes")(body)


def test_refresh_reaches_the_job(tmp_path: Path) -> None:
    """A run triggered with ``--refresh`` is a refresh run: the job sees ``context.refresh``."""
    path = _workspace(
        tmp_path,
        "refreshing",
        """
        from conveyor import RunContext, job


        @job(refresh="always")
        def reload(context: RunContext) -> bool:
            return context.refresh
        """,
    )
    env = home_env(tmp_path / "home")
    queued = conveyor(env, "trigger", str(path), "reload", "--refresh")
    assert queued.returncode == 0, queued.stderr
    plain = conveyor(env, "trigger", str(path), "reload")
    assert plain.returncode == 0, plain.stderr
    reload = load_file(path).job("reload")
    instance = Instance.at(tmp_path / "home")
    try:
        for run_id, refresh in ((queued.stdout.strip(), True), (plain.stdout.strip(), False)):
            assert (instance.run(run_id).tags.get(REFRESH_TAG) == "true") is refresh
            instance.run_store.set_status(run_id, RunStatus.STARTING)  # as the daemon does
            assert execute_run(run_id, reload, instance=instance).output("reload") is refresh
    finally:
        instance.close()


# -- to_job_definition ------------------------------------------------------------------------


def test_to_job_definition_is_the_manifest() -> None:
    class LoadConfig(Config):
        table: str
        limit: int = 100

    @job(
        section="github",
        trigger="every:1h",
        execute={"timeout": "2h"},
        expose={"tags": ["github"], "starred": True},
        require={"region": "eu-west-1"},
        interval={"start": "2026-01-01T00:00:00Z"},
        refresh="block",
    )
    def load_issues(cfg: LoadConfig) -> None:
        """Load one hour of issues."""

    manifest = load_issues.to_job_definition()
    assert json.loads(json.dumps(manifest)) == manifest
    assert manifest["job_ref"] == "jobs.github.load_issues"
    assert manifest["entry_point"]["function"].endswith("load_issues")
    assert manifest["triggers"] == ["every:1h", "tag:github"]
    assert manifest["execute"]["timeout"] == 7200
    assert manifest["expose"]["starred"] is True
    assert manifest["require"]["region"] == "eu-west-1"
    assert manifest["refresh"] == "block"
    assert manifest["config"]["keys"] == ["table", "limit"]
    assert manifest["config"]["schema"]["required"] == ["table"]


# -- @interactive -----------------------------------------------------------------------------


@pytest.mark.parametrize("interface", ["gui", "rest_api", "mcp"])
def test_interactive_job_options(interface: str) -> None:
    """``@interactive``: interface, idle_timeout, execute and expose; the function gets the
    port and base path it serves on."""

    @interactive(
        interface=interface,
        idle_timeout="24h",
        execute={"timeout": "8h"},
        expose={"tags": ["tools"], "starred": True, "manual": False},
    )
    def notebook(context: InteractiveContext) -> str:
        return f"{context.base_path} on {context.port}"

    assert isinstance(notebook, Interactive)
    spec = notebook.spec()
    assert spec["interface"] == interface
    assert (spec["idle_timeout"], spec["timeout"]) == (86400.0, 28800.0)
    assert spec["expose"] == {"tags": ["tools"], "starred": True, "manual": False}
    context = InteractiveContext("notebook", None, 8123, "/apps/notebook", interface)
    assert notebook(context) == "/apps/notebook on 8123"
    with pytest.raises(DefinitionError, match="interface"):
        interactive(interface="tui", name="bad")(lambda context: None)


# -- deliver, @pipeline_run ---------------------------------------------------------------------

PIPELINE = """
from datetime import UTC, datetime, timedelta

import dlt

from conveyor import job, pipeline_run

START = datetime(2026, 1, 1, tzinfo=UTC)


@dlt.resource(primary_key="id", write_disposition="append")
def events(
    stamp=dlt.sources.incremental(
        "stamp", initial_value=START - timedelta(days=1), allow_external_schedulers=True
    ),
):
    for i in range(24 * 6):
        yield {"id": i, "stamp": START + timedelta(minutes=10 * i)}


events_pipeline = dlt.pipeline(
    "events",
    destination=dlt.destinations.duckdb("events.duckdb"),
    pipelines_dir="pipelines",
    dataset_name="raw",
)


@pipeline_run(events_pipeline, trigger="every:1h", interval={"start": START})
def load_events(pipeline):
    return pipeline.run(events())


@job(deliver=events)
def export_events() -> None: ...
"""


def test_deliver_and_pipeline_run_load_an_interval_and_show_the_load_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``@pipeline_run(pipeline)``: the run's interval reaches dlt's incremental, the load
    info is the run's result, and ``conveyor runs show`` prints it; ``deliver=`` keeps
    what a job delivers to."""
    pytest.importorskip("dlt")
    pytest.importorskip("duckdb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    home = tmp_path / "home"
    monkeypatch.setenv("CONVEYOR_HOME", str(home))
    ws = load_file(_workspace(tmp_path, "pipelines", PIPELINE))
    load_events, export_events = ws.job("load_events"), ws.job("export_events")
    assert load_events.options.deliver.pipeline_name == "events"
    assert load_events.to_job_definition()["entry_point"]["category"] == "pipeline"
    assert export_events.options.deliver.name == "events"

    result = load_events.run(interval=("2026-01-01T03:00:00", "2026-01-01T04:00:00"))
    info = result.output("load_events")
    assert info["row_counts"]["events"] == 6
    assert info["new_tables"] == ["events"]
    assert info["interval"] == ["2026-01-01T03:00:00+00:00", "2026-01-01T04:00:00+00:00"]

    env = home_env(home)
    shown = conveyor(env, "runs", "show", result.run_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "load info  pipeline events into duckdb.raw" in out
    assert f"loads       {info['loads_ids'][0]}" in out
    assert re.search(r"^\s+events\s+6$", out, re.MULTILINE)
    assert "events: added id, stamp" in out
    as_json = json.loads(conveyor(env, "runs", "show", result.run_id, "--json").stdout)
    assert as_json["load_info"]["row_counts"]["events"] == 6


def test_pipeline_run_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``@pipeline_run("name")``: the body receives ``dlt.pipeline(name)``."""
    dlt = pytest.importorskip("dlt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")

    @pipeline_run("named_pipeline")
    def load_named(pipeline: Any) -> str:
        return str(pipeline.pipeline_name)

    assert load_named.options.deliver == {"pipeline_name": "named_pipeline"}
    info = load_named.run().output("load_named")
    assert info["pipeline"] == "named_pipeline"
    assert info["returned"] == "named_pipeline"
    assert info["loads_ids"] == []
    assert dlt.__name__ == "dlt"


# -- against a server: runs show, trigger tag: ----------------------------------------------


@dataclass
class Served:
    root: Path
    home: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``conveyor server`` on 127.0.0.1 over a workspace of the pipeline and exposed jobs,
    and a client environment (a token, an empty home of its own) that talks to it."""
    pytest.importorskip("dlt")
    pytest.importorskip("duckdb")
    root = tmp_path_factory.mktemp("served")
    workspace = root / "served.py"
    workspace.write_text(PIPELINE + EXPOSED.replace("from conveyor import job\n", ""))
    home = root / "server-home"
    instance = Instance.at(home)
    try:
        instance.identity.add_user("alice", "operator", password="correct horse")
        _, token = instance.identity.create_token("alice", "laptop")
    finally:
        instance.close()
    env = {
        **home_env(home),
        "DLT_DATA_DIR": str(root / "dlt_data"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    log = root / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*CONVEYOR, "server", str(workspace), "--host", "127.0.0.1", "--port", "0"],
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def url() -> str | None:
            if server.poll() is not None:
                raise AssertionError(f"the server exited:\n{log.read_text()}")
            found = re.search(r"conveyor server[^:]*: (http://\S+)", log.read_text())
            return found.group(1) if found else None

        base = wait_until(url, 90, "the server to print its URL")
        client = {**home_env(root / "client-home"), "COLUMNS": "200", "NO_COLOR": "1"}
        client.update(
            {"CONVEYOR_URL": str(base), "CONVEYOR_TOKEN": token, "XDG_CONFIG_HOME": str(root)}
        )
        yield Served(root, home, client)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


def test_runs_show_on_a_server_prints_the_load_info(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(served.root)
    monkeypatch.setenv("CONVEYOR_HOME", str(served.home))
    monkeypatch.setenv("DLT_DATA_DIR", str(served.root / "dlt_data"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    ws = load_file(served.root / "served.py")
    load_events = ws.job("load_events")
    result = load_events.run(interval=("2026-01-01T05:00:00", "2026-01-01T06:00:00"))
    shown = conveyor(served.env, "runs", "show", result.run_id[:8])
    assert shown.returncode == 0, shown.stderr
    assert "load info  pipeline events into duckdb.raw" in shown.stdout
    assert "interval    [2026-01-01T05:00:00+00:00, 2026-01-01T06:00:00+00:00)" in shown.stdout
    assert re.search(r"^\s+events\s+6$", shown.stdout, re.MULTILINE)
    as_json = json.loads(conveyor(served.env, "runs", "show", result.run_id, "--json").stdout)
    assert as_json["load_info"]["loads_ids"] == result.output("load_events")["loads_ids"]
    # a run that is not a pipeline's shows no load info
    rates_run = ws.job("rates").run().run_id
    plain = conveyor(served.env, "runs", "show", rates_run)
    assert plain.returncode == 0, plain.stderr
    assert "load info" not in plain.stdout


def test_remote_trigger_tag_skips_jobs_that_take_no_manual_runs(served: Served) -> None:
    fanned = conveyor(served.env, "trigger", "tag:finance")
    assert fanned.returncode == 0, fanned.stderr
    assert "prices: skipped, its expose says manual=False" in fanned.stderr
    [run_id] = fanned.stdout.split()
    shown = json.loads(conveyor(served.env, "runs", "show", run_id, "--json").stdout)
    assert shown["job_name"] == "rates"
