"""Running a ``@pipeline_run`` body: the run's interval into dlt, the load info out of it.

dlt's own job launcher hands a scheduler's interval to a pipeline by injecting a
``TimeIntervalContext`` into dlt's ``Container`` around the job function; every
``dlt.sources.incremental(..., allow_external_schedulers=True)`` bound while it is active
takes ``initial_value``/``end_value`` from it, so the pipeline loads exactly
``[start, end)`` and keeps no cursor state of its own. This module does the same with
``context.interval``, then turns the pipeline's load info (load ids, rows per table, the
tables and columns the run added) into a JSON-able dict that is the run's result and
goes to its log. dlt is imported here only, when a pipeline job runs.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from conveyor.definitions.context import RunContext
    from conveyor.definitions.intervals import Interval
    from conveyor.definitions.pipeline_run import PipelineBody

__all__ = ["load_info_summary", "resolve_pipeline", "run_pipeline_body"]

_DLT_TABLES = "_dlt_"  # dlt's own tables (loads, versions, state): not the user's schema


def run_pipeline_body(body: PipelineBody, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run the decorated function of ``body`` on its pipeline, within the run's interval.

    Returns the summary of the pipeline's load info (``load_info_summary``); a value the
    function returned that is not a ``LoadInfo`` is kept under ``"returned"``.
    """
    context = body.context_of(kwargs)
    interval: Interval | None = context.interval if context is not None else None
    pipeline = resolve_pipeline(body.pipeline)
    before_trace = _trace_id(pipeline)
    before_tables = _table_names(pipeline)
    with _interval_context(interval, body.allow_external_schedulers):
        returned = body.call_user_function(args, kwargs, pipeline)
        if inspect.iscoroutine(returned):
            returned = asyncio.run(returned)
    load_info = returned if _is_load_info(returned) else None
    if load_info is None and _trace_id(pipeline) != before_trace:
        load_info = _last_load_info(pipeline)
    summary = load_info_summary(pipeline, load_info, interval, before_tables)
    if returned is not None and load_info is not returned:
        summary["returned"] = returned
    if context is not None:
        _log(context, summary, load_info)
    return summary


def resolve_pipeline(pipeline: object) -> Any:
    """The dlt pipeline ``@pipeline_run`` was given, or the one of that name."""
    if not isinstance(pipeline, str):
        return pipeline
    try:
        import dlt
    except ImportError:
        raise ConfigError(
            f"@pipeline_run({pipeline!r}) needs dlt: pip install 'conveyor[dlt]'"
        ) from None
    return dlt.pipeline(pipeline_name=pipeline)


@contextmanager
def _interval_context(interval: Interval | None, join_all: bool) -> Iterator[None]:
    """dlt's ``TimeIntervalContext`` for ``interval``, as dlt's job launcher injects it."""
    if interval is None:
        yield
        return
    from dlt.common.configuration.container import Container
    from dlt.extract.incremental.context import TimeIntervalContext

    # None leaves the choice to each incremental's own allow_external_schedulers.
    ctx = TimeIntervalContext(
        interval=(interval.start, interval.end),
        allow_external_schedulers=True if join_all else None,
    )
    with Container().injectable_context(ctx):
        yield


def _is_load_info(value: object) -> bool:
    return hasattr(value, "loads_ids") and hasattr(value, "load_packages")


def _trace_id(pipeline: Any) -> str | None:
    trace = getattr(pipeline, "_last_trace", None)
    return str(trace.transaction_id) if trace is not None else None


def _last_load_info(pipeline: Any) -> Any:
    trace = getattr(pipeline, "_last_trace", None)
    return getattr(trace, "last_load_info", None) if trace is not None else None


def _row_counts(pipeline: Any, load_info: Any) -> dict[str, int]:
    """Rows per table the run normalized (dlt's ``last_normalize_info.row_counts``)."""
    trace = getattr(pipeline, "_last_trace", None)
    normalize = getattr(trace, "last_normalize_info", None) if trace is not None else None
    counts = getattr(normalize, "row_counts", None) or {}
    if load_info is not None and normalize is not None:
        loads = set(load_info.loads_ids)
        if not loads.issuperset(getattr(normalize, "loads_ids", [])):
            counts = {}
    return {str(table): int(n) for table, n in counts.items()}


def _table_names(pipeline: Any) -> set[str]:
    if not getattr(pipeline, "default_schema_name", None):
        return set()
    return {str(name) for name in pipeline.default_schema.data_table_names()}


def load_info_summary(
    pipeline: Any,
    load_info: Any,
    interval: Interval | None,
    tables_before: set[str] | None = None,
) -> dict[str, Any]:
    """The run's result: what the pipeline loaded, as a JSON-able dict.

    Keys: ``pipeline``, ``destination``, ``dataset``, ``interval`` (``[start, end]`` as
    ISO text, or ``None``), ``loads_ids``, ``row_counts`` (rows per table, dlt's own
    tables included), ``new_tables`` (data tables the run created), ``schema_changes``
    (per data table, the columns the run's packages added), ``failed_jobs`` and ``packages``
    (per load id: its state and the number of completed and failed jobs).
    """
    summary: dict[str, Any] = {
        "pipeline": str(pipeline.pipeline_name),
        "destination": None,
        "dataset": getattr(pipeline, "dataset_name", None),
        "interval": None
        if interval is None
        else [interval.start.isoformat(), interval.end.isoformat()],
        "loads_ids": [],
        "row_counts": {},
        "new_tables": [],
        "schema_changes": {},
        "failed_jobs": 0,
        "packages": [],
    }
    if load_info is None:
        return summary
    summary["destination"] = load_info.destination_name
    summary["dataset"] = load_info.dataset_name
    summary["loads_ids"] = [str(i) for i in load_info.loads_ids]
    summary["row_counts"] = _row_counts(pipeline, load_info)
    changes: dict[str, list[str]] = {}
    failed = 0
    for package in load_info.load_packages:
        for table_name, table in (package.schema_update or {}).items():
            if str(table_name).startswith(_DLT_TABLES):
                continue
            columns = changes.setdefault(str(table_name), [])
            columns.extend(str(c) for c in table.get("columns", {}) if str(c) not in columns)
        n_failed = len(package.jobs.get("failed_jobs", []))
        failed += n_failed
        summary["packages"].append(
            {
                "load_id": str(package.load_id),
                "state": str(package.state),
                "completed_jobs": len(package.jobs.get("completed_jobs", [])),
                "failed_jobs": n_failed,
            }
        )
    summary["schema_changes"] = changes
    summary["failed_jobs"] = failed
    if tables_before is not None:
        summary["new_tables"] = sorted(_table_names(pipeline) - tables_before)
    return summary


def _log(context: RunContext, summary: dict[str, Any], load_info: Any) -> None:
    log = context.log
    where = (
        f" for {summary['interval'][0]} to {summary['interval'][1]}" if summary["interval"] else ""
    )
    if load_info is None:
        log.warning(
            "pipeline %s: the body loaded nothing%s (return pipeline.run(...) or run the "
            "pipeline in it)",
            summary["pipeline"],
            where,
        )
        return
    rows = ", ".join(f"{t}={n}" for t, n in sorted(summary["row_counts"].items())) or "none"
    log.info(
        "pipeline %s loaded %d package(s)%s into %s.%s: %s; rows: %s",
        summary["pipeline"],
        len(summary["loads_ids"]),
        where,
        summary["destination"],
        summary["dataset"],
        ", ".join(summary["loads_ids"]) or "-",
        rows,
    )
    if summary["new_tables"]:
        log.info("new tables: %s", ", ".join(summary["new_tables"]))
    for table, columns in sorted(summary["schema_changes"].items()):
        log.info("schema change in %s: columns %s", table, ", ".join(columns))
    log.info("%s", load_info)
