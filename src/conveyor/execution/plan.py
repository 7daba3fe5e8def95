"""What a run of a workflow executes: the selected nodes, their dependencies, outside inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.definitions.graph import Graph, Node
from conveyor.definitions.selection import select
from conveyor.errors import MissingInputError, SelectionError


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps of a workflow run, in topological order.

    Attributes:
        steps: selected nodes by key, in an order where dependencies come first.
        deps: for each step, the steps it waits for.
        inputs: outputs of unselected upstream nodes, given from outside.
        selection: the selection expressions, or ``None`` for all.
    """

    graph: Graph
    steps: dict[str, Node]
    deps: dict[str, tuple[str, ...]]
    inputs: dict[str, Any]
    selection: list[str] | None

    def downstream(self) -> dict[str, list[str]]:
        down: dict[str, list[str]] = {k: [] for k in self.steps}
        for k, ds in self.deps.items():
            for d in ds:
                down[d].append(k)
        return down


def build_plan(
    graph: Graph,
    selection: str | Sequence[str] | None = None,
    input_values: Mapping[str, Any] | None = None,
) -> Plan:
    """Plan a run of ``graph``.

    Raises:
        SelectionError: the selection is malformed or names unknown tasks.
        MissingInputError: a selected task needs an unselected task's output
            that ``input_values`` does not give.
    """
    chosen = set(graph.nodes) if selection is None else select(graph, selection)
    inputs = dict(input_values or {})
    unknown = sorted(k for k in inputs if k not in graph.nodes)
    if unknown:
        raise SelectionError(
            f"input_values: no task {', '.join(map(repr, unknown))} in this graph; its keys are "
            f"{', '.join(graph.nodes)}"
        )
    # A task whose output is given is not run: its value stands in (Dagster's input_values,
    # the inputs of a workflow that takes parameters).
    chosen -= set(inputs)
    steps = {k: n for k, n in graph.nodes.items() if k in chosen}
    deps: dict[str, tuple[str, ...]] = {}
    missing: dict[str, list[str]] = {}
    for key, node in steps.items():
        deps[key] = tuple(d for d in node.deps if d in chosen)
        for up in node.upstream:
            if up not in chosen and up not in inputs:
                missing.setdefault(up, []).append(key)
    if missing:
        needs = "; ".join(
            f"{', '.join(users)} need(s) the output of {up!r}" for up, users in missing.items()
        )
        first = next(iter(missing))
        raise MissingInputError(
            f"{needs}, which is not selected: pass input_values={{{first!r}: ...}}, or add it "
            f"to the selection (e.g. '*{missing[first][0]}')"
        )
    sel = (
        None
        if selection is None
        else ([selection] if isinstance(selection, str) else list(selection))
    )
    return Plan(graph=graph, steps=steps, deps=deps, inputs=inputs, selection=sel)
