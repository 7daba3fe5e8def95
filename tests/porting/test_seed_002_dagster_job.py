"""Seed 002 (Dagster's ``@job`` decorator and its parameters), every example written in
Conveyor and run.

``@op`` is ``@task``, a ``@job`` composing ops is ``@workflow``, ``resource_defs=`` is
``resources=`` (a resource reached as ``context.resources.name``), ``RunConfig(ops=...)``
is ``RunConfig(tasks=...)`` (``config: dict`` as in the seed, or a ``Config`` class),
``partitions_def=DailyPartitionsDefinition(...)`` is ``partitions=DailyPartitions(...)``,
``op_retry_policy=`` is ``retry=``, ``tags``/``run_tags``/``metadata``/``owners`` keep
their names (a ``MetadataValue.url`` is a string starting with https://), job-level
``hooks=`` are ``on_task_success=``/``on_task_failure=``, and
``executor_def=in_process_executor`` is ``executor="in_process"``.
"""

from __future__ import annotations

from typing import Any

from conveyor import (
    Config,
    DailyPartitions,
    Instance,
    RetryPolicy,
    RunConfig,
    RunStatus,
    TaskContext,
    resource,
    task,
    workflow,
)

# -- Basic Job ---------------------------------------------------------------------------------


@task
def return_one() -> int:
    return 1


@task
def add_one(x: int) -> int:
    return x + 1


@workflow
def my_job() -> None:
    add_one(return_one())


def test_basic_job(instance: Instance) -> None:
    result = my_job.run(instance=instance)
    assert result.output("add_one") == 2


# -- Job with Resources ------------------------------------------------------------------------


class DatabaseConnection:
    def query(self, sql: str) -> list[str]:
        return [f"row of {sql}"]


@resource
def database_resource() -> DatabaseConnection:
    return DatabaseConnection()


@task
def query_database(context: TaskContext) -> list[str]:
    resources: Any = context.resources  # Dagster's context.resources.database
    return list(resources.database.query("SELECT * FROM users"))


@workflow(resources={"database": database_resource})
def database_job() -> None:
    query_database()


def test_job_with_resources(instance: Instance) -> None:
    result = database_job.run(instance=instance)
    assert result.output("query_database") == ["row of SELECT * FROM users"]


# -- Job with Configuration --------------------------------------------------------------------


@task
def configurable_op(config: dict) -> Any:  # type: ignore[type-arg]
    return config["value"]


@workflow(config=RunConfig(ops={"configurable_op": {"config": {"value": 42}}}))
def configured_job() -> None:
    configurable_op()


class ConfigurableOpConfig(Config):
    value: int


@task
def typed_op(config: ConfigurableOpConfig) -> int:
    return config.value


@workflow(config=RunConfig(tasks={"typed_op": {"config": {"value": 42}}}))
def typed_job() -> None:
    typed_op()


def test_job_with_configuration(instance: Instance) -> None:
    assert configured_job.run(instance=instance).output("configurable_op") == 42
    given = {"ops": {"configurable_op": {"config": {"value": 5}}}}
    assert configured_job.run(given, instance=instance).output("configurable_op") == 5


def test_job_with_typed_configuration(instance: Instance) -> None:
    assert typed_job.run(instance=instance).output("typed_op") == 42
    # A run's own config is laid over the job's, as a launch's run config in Dagster.
    other = typed_job.run(
        RunConfig(tasks={"typed_op": ConfigurableOpConfig(value=7)}), instance=instance
    )
    assert other.output("typed_op") == 7


# -- Partitioned Job ---------------------------------------------------------------------------


@task
def process_partition(context: TaskContext) -> str:
    partition_date = context.partition_key
    return f"Processing {partition_date}"


@workflow(partitions=DailyPartitions(start="2024-01-01"))
def partitioned_job() -> None:
    process_partition()


def test_partitioned_job(instance: Instance) -> None:
    result = partitioned_job.run(partition="2024-01-02", instance=instance)
    assert result.output("process_partition") == "Processing 2024-01-02"
    assert instance.runs("partitioned_job")[0].partition_key == "2024-01-02"


# -- Job with Retry Policy ---------------------------------------------------------------------

CALLS: list[int] = []


def call_external_api() -> str:
    CALLS.append(1)
    if len(CALLS) < 3:
        raise ConnectionError("the API is busy")
    return "payload"


@task
def flaky_op() -> str:
    result = call_external_api()
    return result


# The seed waits 2 s before the first retry; a hundredth of that keeps the test short.
@workflow(retry=RetryPolicy(max_retries=3, delay=0.02, backoff="exponential"))
def resilient_job() -> None:
    flaky_op()


def test_job_with_retry_policy(instance: Instance) -> None:
    CALLS.clear()
    result = resilient_job.run(instance=instance)
    assert result.output("flaky_op") == "payload"
    assert [r.attempt for r in result.task_runs] == [1, 2, 3]


# -- Job with Tags and Metadata ----------------------------------------------------------------


@task
def my_op() -> str:
    return "result"


@workflow(
    tags={"team": "data-platform", "priority": "high"},
    metadata={
        "owner": "data-team@company.com",
        "slack_channel": "https://slack.com/archives/C123",  # MetadataValue.url(...)
    },
    owners=["team:data-platform"],
)
def tagged_job() -> None:
    my_op()


def test_job_with_tags_and_metadata(instance: Instance) -> None:
    result = tagged_job.run(instance=instance)
    assert result.output("my_op") == "result"
    # run_tags is not set, so the job's tags are copied onto its runs.
    assert instance.run_store.get(result.run_id).tags == {
        "team": "data-platform",
        "priority": "high",
    }
    manifest = tagged_job.to_job_definition()
    assert manifest["metadata"]["slack_channel"] == "https://slack.com/archives/C123"
    assert manifest["owners"] == ["team:data-platform"]


def test_run_tags_replace_tags_on_runs(instance: Instance) -> None:
    shown_only = tagged_job.to_job(name="tagged_quiet", run_tags={"cost": "42"})
    result = shown_only.run(instance=instance)
    assert instance.run_store.get(result.run_id).tags == {"cost": "42"}


def test_job_level_hooks_fire_for_each_task(instance: Instance) -> None:
    seen: list[str] = []

    def slack_on_success(context: Any) -> None:  # Dagster's @success_hook
        seen.append(context.task_key)

    my_job.with_hooks(on_task_success=slack_on_success).run(instance=instance)
    assert seen == ["return_one", "add_one"]


# -- Job with Custom Executor ------------------------------------------------------------------


@task
def answer() -> int:
    return 42


@workflow(executor="in_process")
def in_process_job() -> None:
    answer()


def test_job_with_in_process_executor(instance: Instance) -> None:
    result = in_process_job.run(instance=instance)
    assert result.status is RunStatus.SUCCESS
    assert result.output("answer") == 42
