"""``job.to_job_definition()``: dlt's manifest of a job, plain JSON, with its config schema."""

from __future__ import annotations

import json

from conveyor import Config, job, task, workflow


class LoadConfig(Config):
    limit: int = 100
    table: str


class Extra(Config):
    dry_run: bool = False


class Destination:
    """Stands for a dlt pipeline: the manifest names it by ``pipeline_name``."""

    pipeline_name = "github_to_duckdb"


@job(
    name="load_issues",
    section="github",
    trigger=["every:1h", "job.success:upstream"],
    execute={"timeout": "2h", "concurrency": 2},
    expose={"tags": ["github"], "starred": True, "manual": False},
    display_name="Load GitHub issues",
    require={"timezone": "Europe/Berlin", "machine": "2cpu-4gb", "region": "eu"},
    interval={"start": "2026-01-01", "end": None},
    allow_external_schedulers=True,
    freshness="job.is_fresh:upstream",
    deliver=Destination(),
    spec=Extra,
)
def load_issues(cfg: LoadConfig) -> None:
    """Load the issues of one hour."""


def test_manifest_round_trips_through_json_and_says_everything() -> None:
    m = load_issues.to_job_definition()
    assert json.loads(json.dumps(m)) == m
    assert m["job_ref"] == "jobs.github.load_issues"
    assert m["name"] == "load_issues"
    assert m["display_name"] == "Load GitHub issues"
    assert m["description"] == "Load the issues of one hour."
    assert m["entry_point"]["module"] == __name__
    assert m["entry_point"]["function"] == "load_issues"
    assert m["entry_point"]["job_type"] == "batch"
    assert m["entry_point"]["category"] == "pipeline"
    assert m["triggers"] == ["every:1h", "job.success:upstream", "tag:github"]
    assert m["execute"] == {"timeout": 7200.0, "concurrency": 2, "retries": 0}
    assert m["expose"] == {
        "tags": ["github"],
        "starred": True,
        "manual": False,
        "display_name": "Load GitHub issues",
    }
    assert m["require"]["machine"] == {"cpu": 2.0, "memory": 4_000_000_000}
    assert m["require"]["timezone"] == "Europe/Berlin"
    assert m["require"]["region"] == "eu"
    assert m["deliver"]["pipeline_name"] == "github_to_duckdb"
    assert m["interval"] == {"start": "2026-01-01T00:00:00+00:00", "end": None}
    assert m["incremental_mode"] == "interval"
    assert m["allow_external_schedulers"] is True
    assert m["freshness"] == ["job.is_fresh:upstream"]


def test_manifest_has_the_config_keys_and_their_json_schema() -> None:
    config = load_issues.to_job_definition()["config"]
    assert config["keys"] == ["limit", "table", "dry_run"]
    schema = config["schema"]
    assert schema["properties"]["limit"] == {"default": 100, "title": "Limit", "type": "integer"}
    assert schema["required"] == ["table"]
    assert config["spec"]["properties"]["dry_run"]["type"] == "boolean"
    assert config["lookup"][0] == "jobs.github.load_issues.<key>"
    assert config["lookup"][-1] == "<key>"


@task
def extract(cfg: LoadConfig) -> int:
    return cfg.limit


@task
def plain() -> None: ...


def test_a_workflow_lists_each_task_config_and_a_bare_job_has_none() -> None:
    @workflow
    def flow() -> None:
        extract()
        plain()

    @job
    def bare() -> None: ...

    m = flow.to_job_definition()
    assert json.loads(json.dumps(m)) == m
    assert set(m["config"]["tasks"]) == {"extract"}
    assert m["config"]["tasks"]["extract"]["required"] == ["table"]
    assert m["entry_point"]["kind"] == "workflow"
    b = bare.to_job_definition()
    assert b["config"]["keys"] == []
    assert b["config"]["schema"] is None
    assert b["deliver"] is None
    assert b["interval"] is None
    assert b["triggers"] == []
    assert b["expose"]["manual"] is True
    assert b["display_name"] == "bare"
    assert b["section"] == "test_job_manifest"


def test_a_job_with_parameters_as_config_has_their_schema() -> None:
    @job
    def sized(limit: int = 5, name: str = "x") -> None: ...

    config = sized.to_job_definition()["config"]
    assert config["keys"] == ["limit", "name"]
    assert config["schema"]["properties"]["limit"]["type"] == "integer"
