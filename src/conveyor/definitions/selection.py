"""Task selection in Dagster's syntax: ``t``, ``*t``, ``+t``, ``t+``, ``t++``, ``*t+``..."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from conveyor.definitions.graph import Graph
from conveyor.errors import SelectionError

_CLAUSE = re.compile(r"^(\*|\++)?([A-Za-z_][\w.\[\]-]*?)(\*|\++)?$")


def select(graph: Graph, selection: str | Sequence[str]) -> set[str]:
    """The keys that ``selection`` names in ``graph``.

    A clause is a task key with optional marks: a leading ``*`` adds all
    ancestors and each leading ``+`` one level of them; a trailing ``*`` or
    ``+`` does the same for descendants. Several clauses (a list, or one string
    separated by commas or spaces) select the union.

    Raises:
        SelectionError: a clause is malformed or names no task of the graph.
    """
    clauses = [selection] if isinstance(selection, str) else list(selection)
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
        if key not in graph:
            close = difflib.get_close_matches(key, list(graph.nodes), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SelectionError(
                f"invalid selection {part!r}: no task {key!r} in this job "
                f"(tasks: {', '.join(list(graph.nodes)[:20])}){hint}"
            )
        chosen.add(key)
        if up:
            chosen |= graph.ancestors(key, None if up == "*" else len(up))
        if down:
            chosen |= graph.descendants(key, None if down == "*" else len(down))
    return chosen
