"""The workspace of the subgraph and launchpad-default browser tests: a workflow that calls
workflows (drawn collapsed, expanded on click), a job with ``config=`` defaults and a job
whose config is a ``ConfigMapping``."""

from __future__ import annotations

from typing import Any

from conveyor import Config, RunConfig, config_mapping, task, workflow


class Source(Config):
    """How many rows `extract` makes."""

    rows: int = 2


@task
def extract(config: Source) -> list[int]:
    return list(range(config.rows))


@task
def clean(rows: list[int]) -> list[int]:
    return [r for r in rows if r >= 0]


@task
def double(rows: list[int]) -> list[int]:
    return [r * 2 for r in rows]


@task
def publish(left: list[int], right: list[int]) -> int:
    return len(left) + len(right)


@workflow
def ingest() -> Any:
    return clean(extract())


@workflow
def enrich(rows: Any) -> Any:
    return double(double(rows))


@workflow(config={"tasks": {"ingest.extract": {"config": {"rows": 3}}}})
def warehouse() -> None:
    """Two ingests, one enriched, published together."""
    first = ingest()
    second = ingest()
    publish(enrich(first), second)


@workflow(config={"tasks": {"extract": {"config": {"rows": 7}}}})
def defaults() -> None:
    """A job whose config= the launchpad shows."""
    clean(extract())


class Simple(Config):
    """The one knob of `mapped`."""

    how_many: int


@config_mapping
def simple(val: Simple) -> RunConfig:
    return RunConfig(tasks={"extract": Source(rows=val.how_many)})


@workflow(config=simple)
def mapped() -> None:
    clean(extract())
