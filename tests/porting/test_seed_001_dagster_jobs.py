"""Seed 001 (Dagster's ``@job`` and ``JobDefinition``), written in Conveyor and run.

Each test takes one capability or example of the seed and writes it the way
``docs/porting.md`` says: ``@op`` is ``@task``, ``@job`` composing ops is
``@workflow``, ``execute_in_process`` is ``job.run``, ``op_selection`` is
``selection=``, ``partition_key`` is ``partition=``, ``with_top_level_resources``
is ``.to_job(resources=...)``, and a ``reconstructable`` job is one a workspace
file defines at module level, however it was made.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from conveyor import (
    Config,
    Instance,
    Job,
    MissingInputError,
    MultiprocessExecutor,
    Resource,
    RetryPolicy,
    RunConfig,
    RunRequest,
    SelectionError,
    SensorContext,
    StaticPartitions,
    TaskContext,
    UserCodeError,
    resource,
    sensor,
    task,
    workflow,
)
from conveyor.scheduler.daemon import Daemon
from conveyor.workspace import Workspace, load_file
from tests.commands import conveyor, home_env
from tests.waiting import wait_until


@pytest.fixture
def multiprocess() -> Iterator[MultiprocessExecutor]:
    executor = MultiprocessExecutor(max_workers=1)
    yield executor
    executor.close()


# -- the seed's example: @job def job1(): add_one(return_one()) ------------------------------


@task
def return_one() -> int:
    return 1


@task
def add_one(in1: int) -> int:
    return in1 + 1


@workflow
def job1() -> None:
    add_one(return_one())


def test_a_job_composes_ops_by_calling_them(instance: Instance) -> None:
    assert isinstance(job1, Job)
    assert job1.name == "job1"
    assert job1.graph is not None
    assert list(job1.graph.nodes) == ["return_one", "add_one"]
    assert job1.graph.nodes["add_one"].upstream == ("return_one",)
    result = job1.run(instance=instance)  # execute_in_process()
    assert result.success
    assert result.output("add_one") == 2
    assert instance.runs("job1")[0].id == result.run_id  # recorded, as Dagster's instance does


# -- execute_in_process(run_config=..., partition_key=..., resources=...) ---------------------


class Scale(Config):
    factor: int = 1


@task
def scaled(in1: int, config: Scale) -> int:
    return in1 * config.factor


@workflow
def scaling() -> None:
    scaled(return_one())


def test_run_config_as_a_dict_or_a_run_config(instance: Instance) -> None:
    as_dict = {"ops": {"scaled": {"config": {"factor": 3}}}}  # Dagster's key is accepted
    assert scaling.run(as_dict, instance=instance).output("scaled") == 3
    typed = RunConfig(ops={"scaled": Scale(factor=5)})
    assert scaling.run(typed, instance=instance).output("scaled") == 5


@task
def regional_total(context: TaskContext) -> str:
    return f"total for {context.partition}"


@workflow(partitions=StaticPartitions(["us", "eu"]))
def regional() -> None:
    regional_total()


def test_partition_key_is_partition(instance: Instance) -> None:
    result = regional.run(partition="eu", instance=instance)  # partition_key="eu"
    assert result.output("regional_total") == "total for eu"
    assert instance.runs("regional")[0].partition_key == "eu"


class Database(Resource):
    url: str = "sqlite://prod"

    def query(self, sql: str) -> str:
        return f"{sql} on {self.url}"


@task
def query_database(database: Database) -> str:
    return database.query("SELECT 1")


@workflow(resources={"database": Database()})
def database_job() -> None:
    query_database()


def test_resources_given_to_one_run(instance: Instance) -> None:
    mock = MagicMock()
    mock.query.return_value = "mocked"
    result = database_job.run(resources={"database": mock}, instance=instance)
    assert result.output("query_database") == "mocked"
    mock.query.assert_called_once_with("SELECT 1")
    other = database_job.run(
        resources={"database": Database(url="sqlite://test")}, instance=instance
    )
    assert other.output("query_database") == "SELECT 1 on sqlite://test"
    assert (
        database_job.run(instance=instance).output("query_database") == "SELECT 1 on sqlite://prod"
    )


# -- raise_on_error ---------------------------------------------------------------------------


@task
def explode(in1: int) -> int:
    raise ValueError(f"cannot use {in1}")


@task
def independent() -> str:
    return "ran"


@workflow
def failing() -> None:
    add_one(explode(return_one()))
    independent()


def test_raise_on_error_raises_the_ops_own_exception(instance: Instance) -> None:
    with pytest.raises(ValueError, match="cannot use 1"):
        failing.run(instance=instance)  # raise_on_error=True, Dagster's default too
    [recorded, *_] = instance.runs("failing")
    assert recorded.status == "failure"  # the run is recorded before the error is raised


def test_raise_on_error_false_returns_a_failed_result(instance: Instance) -> None:
    result = failing.run(raise_on_error=False, instance=instance)
    assert not result.success
    assert result.status == "failure"
    assert isinstance(result.failures["explode"], UserCodeError)
    assert isinstance(result.error, UserCodeError)
    assert "cannot use 1" in str(result.error)
    assert result.task_status("add_one") == "skipped"  # downstream of the failure
    assert result.output("independent") == "ran"  # other branches still run
    with pytest.raises(ValueError, match="cannot use 1"):
        result.raise_error()


# -- op_selection --------------------------------------------------------------------------


@task
def node(*upstream: int) -> int:
    return 1 + sum(upstream)


# root -> some_op -> d1 -> d2 -> d3 -> d4, other_op_a, other_op_b -> b_child -> b_grandchild
@workflow
def selectable() -> None:
    root = node().alias("root")
    some = node(root).alias("some_op")
    d1 = node(some).alias("d1")
    d2 = node(d1).alias("d2")
    d3 = node(d2).alias("d3")
    node(d3).alias("d4")
    node().alias("other_op_a")
    b = node().alias("other_op_b")
    child = node(b).alias("b_child")
    node(child).alias("b_grandchild")


@pytest.mark.parametrize(
    ("op_selection", "ran"),
    [
        (["*some_op"], {"root", "some_op"}),
        (["*some_op+++"], {"root", "some_op", "d1", "d2", "d3"}),
        (
            ["*some_op", "other_op_a", "other_op_b+"],
            {"root", "some_op", "other_op_a", "other_op_b", "b_child"},
        ),
        ("*some_op, other_op_b*", {"root", "some_op", "other_op_b", "b_child", "b_grandchild"}),
    ],
)
def test_op_selection_runs_only_the_selected_ops(
    instance: Instance, op_selection: str | list[str], ran: set[str]
) -> None:
    result = selectable.run(selection=op_selection, instance=instance)
    assert set(result.task_keys) == ran
    if "d3" in ran:
        assert result.output("d3") == 5


def test_a_selected_op_reads_its_unselected_upstream_from_input_values(
    instance: Instance,
) -> None:
    with pytest.raises(MissingInputError, match=r"pass input_values=\{'root': \.\.\.\}"):
        selectable.run(selection=["some_op"], instance=instance)
    only = selectable.run(selection=["some_op"], input_values={"root": 1}, instance=instance)
    assert only.task_keys == ["some_op"]
    assert only.output("some_op") == 2
    result = selectable.run(selection="d1+", input_values={"some_op": 10}, instance=instance)
    assert set(result.task_keys) == {"d1", "d2"}
    assert result.output("d2") == 12


@pytest.mark.parametrize(
    ("op_selection", "fragment"),
    [
        (["some_opp"], "did you mean 'some_op'"),
        (["*some_op+*"], "invalid selection"),
        ([], "empty selection"),
    ],
)
def test_a_bad_op_selection_is_refused_before_anything_runs(
    instance: Instance, op_selection: list[str], fragment: str
) -> None:
    with pytest.raises(SelectionError, match=fragment):
        selectable.run(selection=op_selection, instance=instance)
    assert instance.runs("selectable") == []


def test_op_selection_names_a_subgraph(instance: Instance) -> None:
    from conveyor import graph

    @graph
    def load(x: int) -> Any:
        return add_one(add_one(x))

    @workflow
    def outer() -> None:
        add_one(load(return_one())).alias("report")

    ran = outer.run(selection="*load", instance=instance)
    assert ran.task_keys == ["return_one", "load.add_one", "load.add_one_2"]
    after = outer.run(selection="load+", input_values={"return_one": 10}, instance=instance)
    assert after.outputs == {"load.add_one": 11, "load.add_one_2": 12, "report": 13}


# -- input_values: top-level inputs --------------------------------------------------------


@task
def greet(name: str = "world") -> str:
    return f"hello {name}"


@workflow
def greeting() -> None:
    greet()


def test_input_values_of_a_workflow_are_outputs_of_unselected_tasks(instance: Instance) -> None:
    # A @workflow body takes no parameters, so it has no top-level inputs: a value
    # comes from a task. input_values stands in for tasks left out by the selection.
    result = job1.run(selection="add_one", input_values={"return_one": 41}, instance=instance)
    assert result.output("add_one") == 42
    assert greeting.run(instance=instance).output("greet") == "hello world"


def test_input_values_of_a_body_job_are_its_parameters(instance: Instance) -> None:
    from conveyor import job

    @job
    def adder(in1: int = 1) -> int:
        return add_one(in1)

    assert adder.run({"config": {"in1": 41}}, instance=instance).output("adder") == 42
    assert adder.run(instance=instance).output("adder") == 2


# -- run_request_for_partition -------------------------------------------------------------


@sensor(job=regional, interval="30s")
def landed(context: SensorContext) -> list[RunRequest]:
    return [
        RunRequest(
            partition="eu",
            run_key="eu-2026-11-30",
            tags={"source": "landing"},
            run_config={"tasks": {}},
        )
    ]


def test_a_sensor_requests_a_run_for_a_partition(instance: Instance) -> None:
    workspace = Workspace(
        jobs={"regional": regional}, origin={"module": __name__}, sensors={"landed": landed}
    )
    daemon = Daemon(workspace, instance, clock=lambda: 1000.0, launch=lambda *_: None)
    daemon.evaluate_sensors(1000.0)
    daemon.evaluate_sensors(1030.0)  # the same run_key again: no second run
    [queued] = instance.runs("regional")
    assert queued.partition_key == "eu"
    assert queued.tags["source"] == "landing"
    assert queued.tags["run_key"] == "eu-2026-11-30"


# -- with_top_level_resources, and the job's properties --------------------------------------


class Server(Resource):
    url: str = "http://127.0.0.1:1"

    def ping_server(self) -> str:
        return f"pong from {self.url}"


@task
def interact_with_server(server: Server) -> str:
    return server.ping_server()


@workflow(resources={"server": Server()})
def do_stuff() -> None:
    interact_with_server()


def test_with_top_level_resources_is_to_job_resources(instance: Instance) -> None:
    prod = do_stuff.to_job(name="do_stuff_prod", resources={"server": Server(url="http://prod")})
    assert prod.run(instance=instance).output("interact_with_server") == "pong from http://prod"
    assert do_stuff.resources["server"].url == "http://127.0.0.1:1"  # the original keeps its own
    legacy = do_stuff.to_job(name="legacy", resource_defs={"server": Server(url="http://legacy")})
    assert legacy.run(instance=instance).output("interact_with_server").endswith("legacy")


@workflow(
    name="typed_job",
    tags={"team": "data-platform"},
    resources={"database": Database()},
    retry=RetryPolicy(max_retries=3, delay=2, backoff="exponential"),
    executor="multiprocess",
    partitions=["us", "eu"],
    config={"tasks": {"scaled": {"config": {"factor": 2}}}},
)
def described() -> None:
    scaled(return_one())
    query_database()


def test_a_jobs_definition_is_read_from_its_attributes(instance: Instance) -> None:
    # Dagster's properties under Conveyor's names: resource_defs -> resources,
    # executor_def -> executor, partitions_def -> partitions, op_retry_policy -> retry,
    # the job's run config -> default_config.
    assert described.name == "typed_job"
    assert set(described.resources) == {"database"}
    assert described.executor == "multiprocess"  # has_specified_executor: it is not None
    assert job1.executor is None  # unspecified: run() runs in process
    assert described.partitions is not None
    assert described.partitions.keys == ("us", "eu")
    assert job1.partitions is None
    assert described.retry is not None
    assert described.retry.max_retries == 3
    assert described.default_config == {"tasks": {"scaled": {"config": {"factor": 2}}}}
    result = described.run(partition="us", executor="in_process", instance=instance)
    assert result.output("scaled") == 2
    assert instance.runs("typed_job")[0].tags["team"] == "data-platform"  # tags reach runs


# -- resources that are functions (the seed's @resource) ---------------------------------------


class DatabaseConnection:
    def query(self, sql: str) -> list[str]:
        return [f"row of {sql}"]


@resource
def database_resource() -> DatabaseConnection:
    return DatabaseConnection()


@task
def query_users(context: TaskContext) -> list[str]:
    rows: list[str] = context.resources.database.query("SELECT * FROM users")
    return rows


@workflow(resources={"database": database_resource})
def users_job() -> None:
    query_users()


def test_a_function_resource_read_from_the_context(instance: Instance) -> None:
    result = users_job.run(instance=instance)
    assert result.output("query_users") == ["row of SELECT * FROM users"]


# -- reconstructable / build_reconstructable_job -----------------------------------------------

FACTORY = """
from conveyor import task, workflow


@task
def add(x: int, y: int) -> int:
    return x + y


class JobFactory:
    def make_job(self, name: str, start: int):
        @task
        def base() -> int:
            return start

        @workflow(name=name, executor="multiprocess")
        def _job():
            add(base(), 1)

        return _job


def reconstruct_job(name: str, start: int):
    return JobFactory().make_job(name, start)


foo_job = reconstruct_job("foo_job", 41)
"""


def test_a_factory_made_job_crosses_processes_from_a_workspace_file(tmp_path: Path) -> None:
    # Dagster's reconstructable(define_job): a workspace file names its jobs as module
    # globals, however they were made. The command loads the file; a detached run's
    # worker process loads it again by its path and the job's name, and the multiprocess
    # executor's workers get the factory's nested tasks by value.
    path = tmp_path / "factory_jobs.py"
    path.write_text(textwrap.dedent(FACTORY))
    env = home_env(tmp_path / "home")
    done = conveyor(env, "run", str(path), "foo_job")
    assert done.returncode == 0, done.stderr
    detached = conveyor(env, "run", str(path), "foo_job", "--detach")
    assert detached.returncode == 0, detached.stderr
    run_id = detached.stdout.split()[0]
    foo_job = load_file(path).job("foo_job")
    at = Instance.at(tmp_path / "home")
    try:
        finished = wait_until(
            lambda: at.run(run_id).status.is_terminal and at.run(run_id),
            60,
            "the detached run of the factory-made job to end",
        )
        assert finished.status == "success"
        runs = foo_job.runs(instance=at)
        assert len(runs) == 2
        assert all(foo_job.result(r.id, "add", instance=at) == 42 for r in runs)
    finally:
        at.close()


def test_a_job_made_in_a_nested_scope_runs_on_the_multiprocess_executor(
    instance: Instance, multiprocess: MultiprocessExecutor
) -> None:
    # Dagster's reconstructable() refuses jobs made inside functions; Conveyor sends the
    # tasks of such a job to the worker by value (cloudpickle), so it runs as it is.
    def make_job(start: int) -> Job:
        @task
        def base() -> int:
            return start

        @workflow(name=f"made_{start}")
        def made() -> None:
            add_one(base())

        return made

    for start in (1, 10):
        result = make_job(start).run(executor=multiprocess, instance=instance)
        assert result.output("add_one") == start + 1


# -- helpers 5-7's Dagster APIs: with_hooks, metadata/owners/run_tags, time partitions,
#    partition config and config mapping ------------------------------------------------------


def test_with_hooks_fires_once_per_op(instance: Instance) -> None:
    succeeded: list[str | None] = []
    failed: list[tuple[str | None, str]] = []

    def on_ok(context: Any) -> None:
        succeeded.append(context.task_key)

    def on_error(context: Any, error: BaseException) -> None:
        failed.append((context.task_key, type(error).__name__))

    hooked: Any = failing.with_hooks(on_task_success=on_ok, on_task_failure=on_error)
    result = hooked.run(raise_on_error=False, instance=instance)
    assert not result.success
    assert sorted(k or "" for k in succeeded) == ["independent", "return_one"]
    assert [key for key, _ in failed] == ["explode"]
    failing.run(raise_on_error=False, instance=instance)  # the original has no hooks
    assert len(succeeded) == 2


def test_metadata_owners_and_run_tags(instance: Instance) -> None:
    @workflow(
        tags={"team": "data-platform"},
        metadata={"owner": "data-team@company.com"},
        owners=["team:data-platform"],
        run_tags={"priority": "high"},
    )
    def tagged_job() -> None:
        return_one()

    meta: Any = tagged_job
    assert meta.metadata == {"owner": "data-team@company.com"}
    assert list(meta.owners) == ["team:data-platform"]
    run = tagged_job.run(instance=instance)
    assert instance.runs("tagged_job")[0].tags["priority"] == "high"
    assert run.success


def test_a_daily_partitioned_job(instance: Instance) -> None:
    import conveyor

    daily = conveyor.DailyPartitions(start="2024-01-01", timezone="UTC")

    @task
    def process_partition(context: TaskContext) -> str:
        return f"Processing {context.partition_key}"

    @workflow(partitions=daily)
    def partitioned_job() -> None:
        process_partition()

    result = partitioned_job.run(partition="2024-01-02", instance=instance)
    assert result.output("process_partition") == "Processing 2024-01-02"


def test_partitioned_config(instance: Instance) -> None:
    import conveyor

    def config_for(key: str) -> dict[str, Any]:
        return {"tasks": {"scaled": {"config": {"factor": len(key)}}}}

    @workflow(
        partitions=StaticPartitions(["us", "asia"]),
        config=conveyor.partition_config(config_for),
    )
    def by_region() -> None:
        scaled(return_one())

    assert by_region.partition_config is not None  # JobDefinition.partitioned_config
    assert by_region.config_mapping is None
    assert by_region.run(partition="asia", instance=instance).output("scaled") == 4
    assert by_region.run(partition="us", instance=instance).output("scaled") == 2


class DoSomethingConfig(Config):
    config_param: str


@task
def do_something(config: DoSomethingConfig) -> str:
    return "config_param: " + config.config_param


class SimplifiedConfig(Config):
    simplified_param: str


def test_config_mapping(instance: Instance) -> None:
    import conveyor

    @conveyor.config_mapping
    def simplified_config(val: SimplifiedConfig) -> RunConfig:
        return RunConfig(
            tasks={"do_something": DoSomethingConfig(config_param=val.simplified_param)}
        )

    @workflow(config=simplified_config)
    def do_it_all_with_simplified_config() -> None:
        do_something()

    job = do_it_all_with_simplified_config
    assert job.config_mapping is simplified_config  # JobDefinition.config_mapping
    assert job.partition_config is None
    # As in Dagster, the run config is the simplified one.
    result = job.run({"simplified_param": "stuff"}, instance=instance)
    assert result.output("do_something") == "config_param: stuff"
    typed = job.run(SimplifiedConfig(simplified_param="typed"), instance=instance)
    assert typed.output("do_something") == "config_param: typed"
