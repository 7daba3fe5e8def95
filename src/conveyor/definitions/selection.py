"""Task selection in Dagster's syntax: ``t``, ``*t``, ``+t``, ``t+``, ``t++``, ``*t+``...

A clause may also name a subgraph (a workflow composed into another, whose
tasks' keys start with ``"<subgraph key>."``): it selects every task of the
subgraph, and its marks reach from the subgraph as a whole, as Dagster's
``op_selection`` does with a graph's name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from conveyor.definitions.graph import Graph
from conveyor.errors import SelectionError

_CLAUSE = re.compile(r"^(\*|\++)?([A-Za-z_][\w.\[\]-]*?)(\*|\++)?$")


def select(graph: Graph, selection: str | Sequence[str]) -> set[str]:
    """The keys that ``selection`` names in ``graph``.

    A clause is a task key or a subgraph key with optional marks: a leading
    ``*`` adds all ancestors and each leading ``+`` one level of them; a
    trailing ``*`` or ``+`` does the same for descendants (``"*t+++"``: t, all
    its ancestors and three levels of descendants). Several clauses (a list, or
    one string separated by commas or spaces) select the union.

    Raises:
        SelectionError: a clause is malformed or names no task or subgraph of the graph.
    """
    clauses = [selection] if isinstance(selection, str) else list(selection)
    for clause in clauses:
        if not isinstance(clause, str):
            raise SelectionError(
                f"invalid selection {clause!r}: each clause is a string such as '*report'"
            )
    parts = [p for c in clauses for p in re.split(r"[,\s]+", c.strip()) if p]
    if not parts:
        raise SelectionError("empty selection: name at least one task, e.g. 'extract+'")
    chosen: set[str] = set()
    for part in parts:
        m = _CLAUSE.match(part)
        if m is None:
            raise SelectionError(
                f"invalid selection {part!r}: write a task key with optional '*' or '+' "
                f"marks, e.g. '*report', 'extract+', '+load++'"
            )
        up, key, down = m.groups()
        members = _members(graph, key, part)
        chosen |= members
        for member in members:
            if up:
                chosen |= graph.ancestors(member, None if up == "*" else len(up))
            if down:
                chosen |= graph.descendants(member, None if down == "*" else len(down))
    return chosen


def _members(graph: Graph, key: str, part: str) -> set[str]:
    """The task ``key``, or every task of the subgraph ``key``.

    The marks of a clause apply to each member: walking ``n`` levels from any
    task of a subgraph reaches exactly the tasks ``n`` levels from the subgraph
    seen as one node, and its own tasks, which are selected anyway.
    """
    if key in graph:
        return {key}
    inside = {k for k in graph.nodes if k.startswith(key + ".")}
    if inside:
        return inside
    names = list(graph.nodes) + sorted(_subgraph_keys(graph))
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise SelectionError(
        f"invalid selection {part!r}: no task {key!r} in this job "
        f"(tasks: {', '.join(list(graph.nodes)[:20])}){hint}"
    )


def _subgraph_keys(graph: Graph) -> set[str]:
    """Every dotted prefix of a task key: the keys of the subgraphs (nested ones too)."""
    keys: set[str] = set()
    for k in graph.nodes:
        head, dot, _ = k.rpartition(".")
        while dot:
            keys.add(head)
            head, dot, _ = head.rpartition(".")
    return keys
