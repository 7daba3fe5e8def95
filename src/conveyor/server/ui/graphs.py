"""The data ``static/graph.js`` draws: nodes (with a label, a line of detail and a state)
and edges. The browser lays it out with dagre; nothing here places a node.

The tasks of a subgraph (a workflow called inside another: keys ``"sub.task"``) carry
their subgraph's key as ``group``, and ``groups`` lists the subgraphs, nested ones with
their ``parent``: the browser draws each one collapsed into a single box, expanded on
click.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from conveyor.server.job_views import JobGraph, TaskOptions
from conveyor.server.run_views import RunDetail, TaskRun
from conveyor.server.ui.templating import duration, size

# Beyond this many tasks a graph is not drawn (the layout would take the browser
# seconds); the timeline and the task table still show every task.
MAX_DRAWN = 400


def options_text(o: TaskOptions) -> str:
    """A task's options in a few words: ``retry 2 · 10 m · 2 cpu · 256 MiB · pool db``."""
    parts = []
    if o.retries:
        parts.append(f"retry {o.retries}")
    if o.timeout:
        parts.append(f"timeout {duration(o.timeout)}")
    if o.cpu:
        parts.append(f"{o.cpu:g} cpu")
    if o.memory:
        parts.append(size(o.memory))
    if o.pool:
        parts.append(f"pool {o.pool}")
    return " · ".join(parts)


def group_of(key: str) -> str | None:
    """The key of the innermost subgraph task ``key`` is in (``"a.b"`` for ``"a.b.t"``)."""
    return key.rpartition(".")[0] or None


def groups_of(keys: Iterable[str]) -> list[dict[str, Any]]:
    """The subgraphs the task ``keys`` belong to, outer ones first: each with its key
    (``id``), its label (its last part) and the subgraph it is in (``parent``)."""
    found: dict[str, dict[str, Any]] = {}
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            gid = ".".join(parts[:i])
            if gid not in found:
                found[gid] = {"id": gid, "label": parts[i - 1], "parent": group_of(gid)}
    return list(found.values())


def job_graph_data(graph: JobGraph) -> dict[str, Any]:
    """A job's graph: each node's options as its detail line."""
    return {
        "nodes": [
            {
                "id": n.key,
                "label": n.key.rpartition(".")[2],
                "sub": options_text(n.options),
                "state": "none",
                "group": group_of(n.key),
            }
            for n in graph.nodes
        ],
        "edges": [[e.source, e.target] for e in graph.edges],
        "groups": groups_of(n.key for n in graph.nodes),
        "too_many": len(graph.nodes) > MAX_DRAWN,
    }


def task_line(t: TaskRun) -> str:
    """A task's state in a few words: ``success · 1.2 s · try 2`` or ``running · attempt 2``
    (short, to fit its box)."""
    status = t.status.replace("_", " ")
    if t.status == "running" and len(t.attempts) > 1:
        return f"{status} · attempt {len(t.attempts)}"
    took = duration(t.duration) if t.duration is not None else ""
    retried = f" · try {len(t.attempts)}" if len(t.attempts) > 1 else ""
    return f"{status}{' · ' + took if took else ''}{retried}"


def run_graph_data(run: RunDetail, graph: JobGraph | None) -> dict[str, Any]:
    """A run's graph: the static graph of its workflow (``graph``, when the job is
    loaded), each task with its state, plus the tasks a job body made as it ran (their
    dependencies as edges). ``graph`` is None for a ``@job``, whose tasks appear as they run."""
    tasks = {t.key: t for t in run.tasks}
    selected = set(run.selection) if run.selection else None
    keys: list[str] = []
    edges: list[list[str]] = []
    if graph is not None:
        keys = [n.key for n in graph.nodes if selected is None or n.key in selected]
        edges = [[e.source, e.target] for e in graph.edges]
    known = set(keys)
    # A job body is a task of its run, keyed by the job's name: the tasks it made that
    # depend on nothing hang from it.
    body = run.job_name if graph is None and run.job_name in tasks else None
    for t in run.tasks:
        if t.key not in known:
            keys.append(t.key)
            known.add(t.key)
        edges += [[d, t.key] for d in t.depends_on]
        if body is not None and t.key != body and not t.depends_on:
            edges.append([body, t.key])
    shown = set(keys)
    unique = {(a, b) for a, b in edges if a in shown and b in shown}
    base = f"/runs/{run.id}?task="
    nodes = []
    for key in keys:
        found = tasks.get(key)
        nodes.append(
            {
                "id": key,
                "label": key.rpartition(".")[2],
                "sub": task_line(found) if found is not None else "not started",
                "state": found.status if found is not None else "pending",
                "href": f"{base}{quote(key, safe='')}#logs",
                "group": group_of(key),
            }
        )
    return {
        "nodes": nodes,
        "edges": sorted([a, b] for a, b in unique),
        "groups": groups_of(keys),
        "too_many": len(nodes) > MAX_DRAWN,
    }
