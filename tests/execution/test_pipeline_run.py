"""``@pipeline_run``: a job bound to a real dlt pipeline, loading into DuckDB in this process.

The run's interval reaches the source's ``dlt.sources.incremental`` (as dlt's own
launcher hands it over), and the pipeline's load info is the run's result.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import DefinitionError, Instance, Job, RunContext, pipeline_run
from conveyor.definitions.pipeline_run import PipelineBody

dlt = pytest.importorskip("dlt")
duckdb = pytest.importorskip("duckdb")

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def hour(n: int) -> datetime:
    return BASE + timedelta(hours=n)


@dlt.resource(name="events", primary_key="id", write_disposition="append")
def joined_events(
    # dlt finds the incremental in the parameter's default: its documented way
    stamp: Any = dlt.sources.incremental(  # noqa: B008
        "stamp", initial_value=BASE - timedelta(days=1), allow_external_schedulers=True
    ),
) -> Iterator[dict[str, Any]]:
    """Rows every ten minutes over six hours; the incremental joins the scheduler."""
    for i in range(6 * 6):
        yield {"id": i, "stamp": BASE + timedelta(minutes=10 * i)}


@dlt.resource(name="events", primary_key="id", write_disposition="append")
def plain_events(
    stamp: Any = dlt.sources.incremental("stamp", initial_value=BASE - timedelta(days=1)),  # noqa: B008
) -> Iterator[dict[str, Any]]:
    """The same rows; the incremental does not ask for the scheduler's interval."""
    for i in range(6 * 6):
        yield {"id": i, "stamp": BASE + timedelta(minutes=10 * i)}


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt sends anonymous usage data unless told not to: tests stay on this machine."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")


@pytest.fixture
def pipeline(tmp_path: Path) -> Any:
    return dlt.pipeline(
        "events_pipeline",
        destination=dlt.destinations.duckdb(str(tmp_path / "events.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        dataset_name="raw",
    )


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[Instance]:
    inst = Instance.at(tmp_path / "conveyor")
    yield inst
    inst.close()


def stamps(tmp_path: Path) -> list[datetime]:
    con = duckdb.connect(str(tmp_path / "events.duckdb"), read_only=True)
    try:
        rows = con.execute("select stamp from raw.events order by stamp").fetchall()
    finally:
        con.close()
    return [r[0].astimezone(UTC) for r in rows]


def in_hour(n: int) -> list[datetime]:
    return [hour(n) + timedelta(minutes=10 * i) for i in range(6)]


def test_the_job_is_a_job_bound_to_the_pipeline(pipeline: Any) -> None:
    @pipeline_run(pipeline, trigger="every:1h", interval={"start": BASE})
    def load(pipeline: Any, context: RunContext) -> Any:
        """Load the events."""
        return pipeline.run(joined_events())

    assert isinstance(load, Job)
    assert load.name == "load"
    assert load.description == "Load the events."
    assert load.options.deliver is pipeline
    assert load.incremental_mode == "interval"
    assert isinstance(load.fn, PipelineBody)
    assert load.fn.pipeline_name == "events_pipeline"
    # Conveyor fills `pipeline`; the engine sees a body that takes the run's context
    assert [p.name for p in load.params] == ["context"]
    assert "events_pipeline" in repr(load.fn)
    assert load.version


def test_each_run_loads_exactly_its_interval(
    pipeline: Any, durable: Instance, tmp_path: Path
) -> None:
    @pipeline_run(pipeline, trigger="every:1h", interval={"start": BASE})
    def load(pipeline: Any) -> Any:
        return pipeline.run(joined_events())

    infos = []
    for n in (2, 0, 1):
        run = load.run(interval=(hour(n), hour(n + 1)), instance=durable)
        infos.append(durable.result(run.run_id, "load"))
    assert stamps(tmp_path) == in_hour(0) + in_hour(1) + in_hour(2)
    first = infos[0]
    assert first["pipeline"] == "events_pipeline"
    assert first["destination"] == "duckdb"
    assert first["dataset"] == "raw"
    assert first["interval"] == [hour(2).isoformat(), hour(3).isoformat()]
    assert first["row_counts"]["events"] == 6
    assert first["new_tables"] == ["events"]
    assert {"id", "stamp"} <= set(first["schema_changes"]["events"])
    assert first["failed_jobs"] == 0
    assert [p["state"] for p in first["packages"]] == ["loaded"]
    assert len(first["loads_ids"]) == 1
    # later loads add no table
    assert infos[1]["new_tables"] == []
    assert all(i["row_counts"]["events"] == 6 for i in infos)
    assert len({i["loads_ids"][0] for i in infos}) == 3
    # the load info is in the run's log
    log = load.logs(durable.runs("load", limit=1)[0].id, "load", instance=durable)
    assert "pipeline events_pipeline loaded 1 package(s)" in log
    assert "events=6" in log


def test_allow_external_schedulers_joins_every_incremental(
    pipeline: Any, durable: Instance, tmp_path: Path
) -> None:
    @pipeline_run(
        pipeline, trigger="every:1h", interval={"start": BASE}, allow_external_schedulers=True
    )
    def load(pipeline: Any) -> Any:
        return pipeline.run(plain_events())

    assert load.incremental_mode == "interval"
    load.run(interval=(hour(3), hour(4)), instance=durable)
    assert stamps(tmp_path) == in_hour(3)


def test_a_body_in_dlts_style_runs_the_module_pipeline_and_its_load_is_found(
    pipeline: Any, durable: Instance, tmp_path: Path
) -> None:
    """dlt's own convention: the body takes no argument and returns nothing."""

    @pipeline_run(pipeline, trigger="every:1h", interval={"start": BASE})
    def load() -> None:
        pipeline.run(joined_events())

    run = load.run(interval=(hour(4), hour(5)), instance=durable)
    info = durable.result(run.run_id, "load")
    assert info["row_counts"]["events"] == 6
    assert "returned" not in info
    assert stamps(tmp_path) == in_hour(4)


def test_config_and_a_returned_value_beside_the_load_info(
    pipeline: Any, durable: Instance, tmp_path: Path
) -> None:
    @pipeline_run(pipeline, trigger="every:1h", interval={"start": BASE})
    def load(pipeline: Any, context: RunContext, limit: int = 100) -> dict[str, int]:
        info = pipeline.run(joined_events().add_limit(limit))
        return {"limit": limit, "loads": len(info.loads_ids)}

    run = load.run({"config": {"limit": 2}}, interval=(hour(0), hour(6)), instance=durable)
    info = durable.result(run.run_id, "load")
    assert info["returned"] == {"limit": 2, "loads": 1}
    assert info["row_counts"]["events"] == 2
    assert len(stamps(tmp_path)) == 2


def test_a_body_that_loads_nothing_says_so(pipeline: Any, durable: Instance) -> None:
    @pipeline_run(pipeline)
    def load() -> None:
        return None

    run = load.run(instance=durable)
    info = durable.result(run.run_id, "load")
    assert info["loads_ids"] == []
    assert info["interval"] is None
    assert "loaded nothing" in load.logs(run.run_id, "load", instance=durable)


def test_a_pipeline_named_by_its_name(
    durable: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))

    @pipeline_run("named_pipeline")
    def load(pipeline: Any) -> str:
        return str(pipeline.pipeline_name)

    assert load.options.deliver == {"pipeline_name": "named_pipeline"}
    run = load.run(instance=durable)
    assert durable.result(run.run_id, "load")["returned"] == "named_pipeline"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: pipeline_run(42), "must be a dlt pipeline"),
        (lambda: pipeline_run(""), "give the dlt pipeline"),
        (lambda: pipeline_run("p", deliver="x"), "deliver= is set by @pipeline_run"),
        (lambda: pipeline_run("p", colour="red"), "unknown option(s) colour"),
        (
            lambda: pipeline_run("p", allow_external_schedulers="yes"),  # type: ignore[arg-type]
            "must be True or False",
        ),
    ],
)
def test_bad_pipeline_runs(make: Any, fragment: str) -> None:
    with pytest.raises(DefinitionError, match=None) as raised:
        make()(lambda: None)
    assert fragment in str(raised.value)


def test_a_context_parameter_of_another_type_is_refused() -> None:
    def load(context: int) -> None:
        return None

    with pytest.raises(DefinitionError, match="annotate it RunContext"):
        pipeline_run("p")(load)


def test_import_conveyor_does_not_import_dlt() -> None:
    code = "import sys, conveyor; assert 'dlt' not in sys.modules, 'dlt was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
