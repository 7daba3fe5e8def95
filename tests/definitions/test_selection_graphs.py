"""Selecting a subgraph by its key (Dagster's ``op_selection`` with a graph's name), and
clauses that are not strings."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import SelectionError, task
from conveyor.definitions.graph import Graph, Node
from conveyor.definitions.selection import select


@task
def t(*args: object) -> None: ...


def _node(key: str, *upstream: str) -> Node:
    return Node(key=key, task=t, args=(), kwargs={}, upstream=upstream)


# src -> load.extract -> load.clean -> report -> publish ; src -> audit ;
# load.clean -> load.inner.check (a subgraph inside the subgraph)
GRAPH = Graph(
    [
        _node("src"),
        _node("load.extract", "src"),
        _node("load.clean", "load.extract"),
        _node("load.inner.check", "load.clean"),
        _node("report", "load.clean"),
        _node("publish", "report"),
        _node("audit", "src"),
    ]
)
LOAD = {"load.extract", "load.clean", "load.inner.check"}


@pytest.mark.parametrize(
    ("expr", "keys"),
    [
        ("load", LOAD),
        ("load.inner", {"load.inner.check"}),
        ("load.clean", {"load.clean"}),
        ("+load", LOAD | {"src"}),
        ("load+", LOAD | {"report"}),
        ("load++", LOAD | {"report", "publish"}),
        ("*load+", LOAD | {"src", "report"}),
        ("load.inner*", {"load.inner.check"}),
        (["load.inner", "audit"], {"load.inner.check", "audit"}),
    ],
)
def test_a_subgraph_key_selects_its_tasks(expr: str | list[str], keys: set[str]) -> None:
    assert select(GRAPH, expr) == keys


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("loa", "did you mean 'load'"),
        ("load.inne", "did you mean 'load.inner'"),
        ("load.", "no task 'load.'"),
        ("*load.*", "no task 'load.'"),
        ("+load*+", "invalid selection"),
    ],
)
def test_bad_subgraph_selections(expr: str, fragment: str) -> None:
    with pytest.raises(SelectionError, match=fragment):
        select(GRAPH, expr)


@pytest.mark.parametrize("clause", [1, None, ["load"]])
def test_a_clause_that_is_not_a_string_is_refused(clause: Any) -> None:
    with pytest.raises(SelectionError, match="each clause is a string"):
        select(GRAPH, ["load", clause])
