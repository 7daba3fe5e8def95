"""Datatailr's scheduler (seed ``003``), ported: each example and documented capability of
the seed written in Conveyor as close to the original as ``docs/porting.md`` says, and run.

The seed's ``# Datatailr:`` lines are quoted above each port. Environments, versions,
``promote`` and ``rerun(version=)`` belong to issue 15 and are not here; container
options (image, python_requirements, build scripts) have no meaning without containers
(the porting guide says what stands in for each).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conveyor import (
    App,
    DefinitionError,
    DuplicateTaskError,
    ExcelAddin,
    Instance,
    Schedule,
    ScheduleError,
    Service,
    task,
    workflow,
)
from conveyor.definitions.display_names import identifier_for
from conveyor.scheduler.supervisor import Supervisor
from conveyor.storage.records import TaskResources
from conveyor.storage.workloads import WorkloadRecord
from conveyor.workspace import load_file
from tests.waiting import wait_until

# -- the @task example ---------------------------------------------------------------------
# Datatailr:
#   @task(memory="512m", cpu=2)
#   def heavy_computation(x, y):
#       return x ** y


@task(memory="512m", cpu=2)
def heavy_computation(x: int, y: int) -> int:
    return int(x**y)


@task(memory="256m", cpu=1)
def get_data() -> list[int]:
    print("fetched 3 rows")
    return [1, 2, 3]


@task
def summarize(rows: list[int]) -> int:
    print("summing", file=sys.stderr)
    return sum(rows)


@task(env_vars={"MODE": "daily"})
def mode() -> str:
    return os.environ["MODE"]


# The workflow of the seed's run_details example, named as Datatailr names it.
@workflow(name="Simple Data Pipeline", env_vars={"REGION": "eu"})
def simple_data_pipeline() -> None:
    rows = get_data()
    summarize(rows).set_resources(memory="1g", cpu=2)
    heavy_computation(2, 10)


def test_the_task_decorator_takes_memory_and_cpu_and_is_a_plain_function_outside_a_run() -> None:
    assert heavy_computation(2, 3) == 8  # Datatailr's Task.run(): the entrypoint itself
    assert (heavy_computation.cpu, heavy_computation.memory) == (2.0, 512_000_000)


def test_a_workflow_named_with_spaces_keeps_it_as_its_display_name() -> None:
    assert simple_data_pipeline.display_name == "Simple Data Pipeline"
    assert simple_data_pipeline.name == "simple_data_pipeline"
    assert simple_data_pipeline.success == "job.success:simple_data_pipeline"
    assert simple_data_pipeline.to_job_definition()["display_name"] == "Simple Data Pipeline"
    assert identifier_for("  Options Pricer (v2) ") == "options_pricer_v2"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"name": "3 day report"}, r"derived from it \('3_day_report'\) is not a valid name"),
        (
            {"name": "Simple Data Pipeline", "display_name": "Other"},
            r"display_name='Other' differs from it",
        ),
        (
            {"name": "Simple Data Pipeline", "expose": {"display_name": "Other"}},
            r"display_name='Simple Data Pipeline' and expose display_name='Other' differ",
        ),
        ({"name": "a/b"}, r"a job name may hold letters, digits"),
    ],
)
def test_a_bad_display_name_is_refused_with_the_fix(options: dict[str, object], error: str) -> None:
    def body() -> None:
        get_data()

    with pytest.raises(DefinitionError, match=error):
        workflow(**options)(body)  # type: ignore[call-overload]


def test_a_display_name_given_both_ways_the_same_is_accepted() -> None:
    @workflow(name="Daily Prices", display_name="Daily Prices")
    def prices() -> None:
        get_data()

    assert (prices.name, prices.display_name) == ("daily_prices", "Daily Prices")


# -- Task: __call__, alias, set_resources, update_env_vars, id ------------------------------


@dataclass
class Resources:
    """Datatailr's ``Resources`` dataclass, as a user's ported code would still have it."""

    memory: str = "256m"
    cpu: float = 1.0


def test_task_calls_alias_set_resources_and_update_env_vars_per_call() -> None:
    # Datatailr: t = get_data().alias("fetch"); t.set_resources(Resources(memory="2g", cpu=4))
    @workflow
    def sized() -> None:
        get_data().alias("fetch").set_resources(Resources(memory="2g", cpu=4))
        get_data().set_resources(memory="128m")
        mode().update_env_vars({"MODE": "full"})
        mode()

    nodes = sized.graph.nodes if sized.graph is not None else {}
    # Task.id: the key (a second call of a task is numbered, an alias replaces it)
    assert list(nodes) == ["fetch", "get_data_2", "mode", "mode_2"]
    assert (nodes["fetch"].task.cpu, nodes["fetch"].task.memory) == (4.0, 2_000_000_000)
    assert (nodes["get_data_2"].task.cpu, nodes["get_data_2"].task.memory) == (1.0, 128_000_000)
    result = sized.run()
    assert result.output("mode") == "full"
    assert result.output("mode_2") == "daily"
    assert get_data.memory == 256_000_000  # the task itself is unchanged


def test_a_duplicate_name_in_a_workflow_is_refused() -> None:
    # Datatailr: DuplicateJobNameError when a job with a duplicate name is added to the batch.
    def body() -> None:
        get_data().alias("rows")
        get_data().alias("rows")

    with pytest.raises(DuplicateTaskError, match="rows"):
        workflow(body)


# -- Schedule ------------------------------------------------------------------------------


def test_the_schedule_examples_compile_to_cron() -> None:
    # Datatailr: schedule = Schedule(at_hours=[0])
    assert Schedule(at_hours=[0]).get_cron_string() == "0 0 * * *"
    # Datatailr: Schedule(at_minutes=[0, 30], weekdays=["Mon", "Wed", "Fri"])
    assert Schedule(at_minutes=[0, 30], weekdays=["Mon", "Wed", "Fri"]).cron == "0,30 * * * 1,3,5"
    # Datatailr's get_cron_string example ('0 0,15,30,45 0,12 15 1,7 1,3,5': a seconds
    # field first); Conveyor's cron has the five standard fields.
    full = Schedule(
        at_minutes=[0, 15, 30, 45],
        at_hours=[0, 12],
        weekdays=["Mon", "Wed", "Fri"],
        day_of_month=15,
        in_month=["Jan", "Jul"],
    )
    assert full.get_cron_string() == "0,15,30,45 0,12 15 1,7 1,3,5"
    # Datatailr: every weekday at 08:00 and 16:00 UTC
    s = Schedule(at_hours=[8, 16], weekdays=["mon", "tue", "wed", "thu", "fri"], timezone="UTC")
    assert s.cron == "0 8,16 * * 1,2,3,4,5"
    assert Schedule(every_minute=15).cron == "*/15 * * * *"
    assert Schedule(every_hour=6).cron == "0 */6 * * *"
    assert Schedule(every_month=3).cron == "0 0 1 */3 *"
    assert Schedule(cron_expression="5 4 * * *", timezone="Europe/Berlin").cron == "5 4 * * *"


def test_a_scheduled_workflow_fires_at_its_schedule_in_its_time_zone() -> None:
    @workflow(schedule=Schedule(at_hours=[8], weekdays=["Mon"], timezone="Europe/Berlin"))
    def weekly() -> None:
        get_data()

    trigger = weekly.timed_trigger
    assert trigger is not None
    assert str(trigger).startswith("schedule:0 8 * * 1")
    [first] = Schedule(at_hours=[8], weekdays=["Mon"], timezone="Europe/Berlin").next_fire_times(
        datetime(2026, 11, 21, tzinfo=UTC), 1
    )
    assert first.isoformat() == "2026-11-23T08:00:00+01:00"


@pytest.mark.parametrize(
    ("condition", "trigger"),
    [
        (None, "job.success:simple_data_pipeline"),
        ("on success", "job.success:simple_data_pipeline"),
        ("on failure", "job.fail:simple_data_pipeline"),
        ("completed", "job.completed:simple_data_pipeline"),
    ],
)
def test_run_after_job_name_is_a_chain(condition: str | None, trigger: str) -> None:
    # Datatailr: Schedule(run_after_job_name=..., run_after_job_condition="on failure")
    @workflow(
        schedule=Schedule(
            run_after_job_name=simple_data_pipeline.name, run_after_job_condition=condition
        )
    )
    def after() -> None:
        get_data()

    assert [str(t) for t in after.triggers] == [trigger]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"at_hours": [24]}, r"0.23"),
        ({"weekdays": ["Funday"]}, r"Funday"),
        ({"in_month": ["Smarch"]}, r"Smarch"),
        ({"timezone": "Mars/Olympus"}, r"Mars/Olympus"),
        ({"run_after_job_uuid": "6f1c"}, r"run_after_job_name"),
        ({"run_after_job_condition": "on failure"}, r"run_after_job_name"),
        ({"run_after_job_name": "etl", "run_after_job_condition": "maybe"}, r"'completed'"),
        ({"run_after_job_name": "etl", "at_hours": [1]}, r"no times of its own"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ScheduleError, match=error):
        Schedule(**fields)  # type: ignore[arg-type]


# -- runs, run_details, logs, result, rerun ------------------------------------------------


def test_run_then_runs_run_details_logs_and_result(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    before = datetime.now(UTC)
    # Datatailr: workflow.run() (save + start); here it runs now, in this process.
    result = simple_data_pipeline.run(instance=instance)
    assert result.success

    # Datatailr: runs(start_time=None, end_time=None)
    [record] = simple_data_pipeline.runs(start_time=before, instance=instance)
    assert record.id == result.run_id
    assert simple_data_pipeline.runs(end_time=before, instance=instance) == []

    # Datatailr: run_details(run_id), each task with its dependencies and resources
    details = simple_data_pipeline.run_details(result.run_id, instance=instance)
    assert details.status == "success"
    assert details.job_version == simple_data_pipeline.version
    assert details.started_at is not None
    assert details.ended_at is not None
    assert sorted(t.key for t in details.tasks) == ["get_data", "heavy_computation", "summarize"]
    assert details.task("summarize").depends_on == ["get_data"]
    resources = {t.key: t.resources for t in details.tasks}
    assert resources == {
        "get_data": TaskResources(cpu=1.0, memory=256_000_000),
        "summarize": TaskResources(cpu=2.0, memory=1_000_000_000),  # the call's sizes
        "heavy_computation": TaskResources(cpu=2.0, memory=512_000_000),
    }
    assert repr(resources["get_data"]) == "Resources(memory=256000000, cpu=1.0)"
    as_dict = details.to_dict()
    by_key = {t["key"]: t for t in as_dict["tasks"]}
    assert by_key["summarize"]["resources"] == {"cpu": 2.0, "memory": 1_000_000_000}
    json.dumps(as_dict, default=str)

    # Datatailr: logs(run_id, task_name=None, stderr=False, lines=5000) and result(run_id, ...)
    assert simple_data_pipeline.logs(result.run_id, "get_data", instance=instance).strip() == (
        "fetched 3 rows"
    )
    stderr = simple_data_pipeline.logs(result.run_id, "summarize", stderr=True, instance=instance)
    assert "summing" in stderr
    assert simple_data_pipeline.result(result.run_id, "summarize", instance=instance) == 6
    assert simple_data_pipeline.result(result.run_id, "heavy_computation", instance=instance) == (
        1024
    )


def test_run_details_show_the_resources_of_the_version_that_ran(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")

    @workflow(name="Sized Pipeline")
    def sized() -> None:
        get_data()

    run_id = sized.run(instance=instance).run_id

    # The workflow is redefined with other sizes: the old run keeps the sizes it ran
    # with, as Datatailr's run_details reads them from the version that produced it.
    @workflow(name="Sized Pipeline")
    def sized_again() -> None:
        get_data().set_resources(cpu=8)

    assert sized_again.version != sized.version
    old = sized_again.run_details(run_id, instance=instance)
    assert old.task("get_data").resources == TaskResources(cpu=1.0, memory=256_000_000)
    new = sized_again.run_details(sized_again.run(instance=instance).run_id, instance=instance)
    assert new.task("get_data").resources == TaskResources(cpu=8.0, memory=256_000_000)


def test_rerun_runs_the_failed_tasks_or_the_whole_workflow(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    flag = tmp_path / "fixed"

    @task
    def flaky(rows: list[int]) -> int:
        if not flag.exists():
            raise ValueError("the feed is late")  # Datatailr's TaskError: here UserCodeError
        return len(rows)

    @workflow
    def nightly() -> None:
        flaky(get_data())

    first = nightly.run(instance=instance, raise_on_error=False)
    assert not first.success
    assert "task 'flaky' raised ValueError: the feed is late" in str(first.error)
    flag.touch()
    # Datatailr: rerun(run_id, full=False): only what failed or did not run
    again = nightly.rerun(first.run_id, instance=instance)
    assert again.success
    assert again.output("flaky") == 3
    assert again.task_status("get_data") == "reused"
    # Datatailr: rerun(run_id, full=True): every task again
    full = nightly.rerun(first.run_id, full=True, instance=instance)
    assert full.task_status("get_data") == "success"


# -- env_vars, acl, to_dict/to_json -------------------------------------------------------


def test_workflow_env_vars_reach_every_task_and_a_task_s_own_win() -> None:
    @task
    def region() -> str:
        return os.environ["REGION"]

    @workflow(env_vars={"REGION": "eu", "MODE": "weekly"})
    def regional() -> None:
        region()
        mode()

    # Datatailr: Workflow.get_env_vars_copy()
    assert dict(regional.env_vars) == {"REGION": "eu", "MODE": "weekly"}
    result = regional.run()
    assert (result.output("region"), result.output("mode")) == ("eu", "daily")
    assert "REGION" not in os.environ


def test_acl_is_access_and_to_dict_is_the_job_definition() -> None:
    # Datatailr: acl=ACL(...); here access= with users and groups and their permissions
    @workflow(name="Shared Pipeline", access={"alice": ["operate"], "group:quants": ["read"]})
    def shared() -> None:
        get_data()

    assert shared.access is not None
    assert shared.access.as_dict() == {"group:quants": ["read"], "user:alice": ["operate"]}
    # Datatailr: to_dict() / to_json()
    definition = shared.to_job_definition()
    assert definition["display_name"] == "Shared Pipeline"
    assert json.loads(json.dumps(definition, default=str))["display_name"] == "Shared Pipeline"


# -- Service, App, ExcelAddin: started for real by the supervisor --------------------------

WORKLOADS = textwrap.dedent(
    """
    from flask import Flask

    from conveyor import Addin, ExcelAddin, Service

    # Datatailr's Service example
    app = Flask(__name__)


    @app.route("/health")
    def health_check():
        return "OK"


    def run_server(port):
        app.run("127.0.0.1", port=int(port), debug=False)


    svc = Service(
        name="simple-service",
        entrypoint=run_server,
        health="/health",
        memory="512m",
        env_vars={"GREETING": "hi"},
    )

    # Datatailr's ExcelAddin example
    addin_def = Addin("Options Pricer", "Option pricing functions")


    @addin_def.expose(description="Black-Scholes price")
    def price_option(spot: float, strike: float, vol: float, rate: float, expiry: float) -> float:
        return max(spot - strike, 0.0)


    addin = ExcelAddin(name="options-pricer", entrypoint=addin_def)
    """
)


class Pids:
    """Process groups to kill at the end of a test, by the pids the store recorded."""

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def note(self, record: WorkloadRecord | None) -> WorkloadRecord | None:
        if record is not None and record.pid is not None:
            self.pids.add(record.pid)
        return record

    def kill(self) -> None:
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def pids() -> Iterator[Pids]:
    p = Pids()
    yield p
    p.kill()


def _running(sup: Supervisor, instance: Instance, pids: Pids, name: str) -> WorkloadRecord | None:
    sup.supervise()
    r = pids.note(instance.workloads.get(name))
    return r if r is not None and r.state == "running" and r.health == "ok" else None


def test_the_service_and_the_excel_addin_examples_run_under_the_supervisor(
    tmp_path: Path, pids: Pids
) -> None:
    ws = tmp_path / "workloads.py"
    ws.write_text(WORKLOADS)
    instance = Instance.at(tmp_path / "home")
    sup = Supervisor(load_file(ws), instance, "test:1:x", "testhost")
    try:
        svc = wait_until(lambda: _running(sup, instance, pids, "simple-service"), 60, "svc")
        addin = wait_until(lambda: _running(sup, instance, pids, "options-pricer"), 60, "addin")
        assert svc is not None
        assert addin is not None
        health = httpx.get(f"http://127.0.0.1:{svc.port}/health", timeout=10)
        assert health.text == "OK"
        base = f"http://127.0.0.1:{addin.port}/apps/options-pricer"
        priced = httpx.post(f"{base}/functions/price_option", json=[110, 100, 0.2, 0.0, 1.0])
        assert priced.json() == {"result": 10.0}
        assert "<OfficeApp" in httpx.get(f"{base}/manifest.xml", timeout=10).text
    finally:
        sup.close(stop=True)


def test_a_workload_name_with_spaces_is_refused_with_the_fix() -> None:
    # Datatailr: Service(name="Simple Service", ...): a workload's name is part of its URL
    with pytest.raises(DefinitionError, match="part of its URL"):
        Service(name="Simple Service", entrypoint=lambda port: None)


@pytest.mark.slow
def test_the_streamlit_app_example_runs_under_the_supervisor(tmp_path: Path, pids: Pids) -> None:
    # Datatailr: App(name="Simple Dashboard App", entrypoint=main, python_requirements=...)
    (tmp_path / "dashboard.py").write_text(
        textwrap.dedent(
            """
            import streamlit as st


            def main():
                st.title("Hello Datatailr App")


            if __name__ == "__main__":
                main()
            """
        )
    )
    ws = tmp_path / "apps.py"
    ws.write_text(
        "from conveyor import App\n"
        "app = App(name='simple-dashboard-app', entrypoint='dashboard.py')\n"
    )
    declared = load_file(ws).workloads["simple-dashboard-app"]
    assert isinstance(declared, App)
    assert declared.framework is None  # inferred from the script's imports
    instance = Instance.at(tmp_path / "home")
    sup = Supervisor(load_file(ws), instance, "test:1:x", "testhost")
    try:

        def up() -> WorkloadRecord | None:
            sup.supervise()
            r = pids.note(instance.workloads.get("simple-dashboard-app"))
            return r if r is not None and r.state == "running" else None

        r = wait_until(up, 90, "the Streamlit app to run")
        assert r is not None
        health = f"http://127.0.0.1:{r.port}/apps/simple-dashboard-app/_stcore/health"

        def answers() -> str | None:
            try:
                return httpx.get(health, timeout=5).text
            except httpx.HTTPError:
                return None

        assert wait_until(answers, 60, "Streamlit's health") == "ok"
    finally:
        sup.close(stop=True)


def test_app_and_excel_addin_refuse_what_they_cannot_run() -> None:
    with pytest.raises(DefinitionError, match="framework='gradio' must be one of"):
        App(name="board", entrypoint="board:app", framework="gradio")
    with pytest.raises(DefinitionError, match="entrypoint"):
        ExcelAddin(name="pricer", entrypoint=42)


def test_runs_between_two_times_refuse_a_bad_time() -> None:
    from conveyor import ConfigError

    with pytest.raises(ConfigError, match="start_time='yesterday'"):
        simple_data_pipeline.runs(start_time="yesterday")
    now = datetime.now(UTC)
    with pytest.raises(ConfigError, match="the start must be before the end"):
        simple_data_pipeline.runs(start_time=now, end_time=now - timedelta(hours=1))
