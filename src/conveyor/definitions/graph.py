"""Static task graphs: nodes, the references between them, and traversal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import CycleError

if TYPE_CHECKING:
    from conveyor.definitions.task import Task


@dataclass(frozen=True, slots=True)
class OutputRef:
    """A reference to the output of node ``key`` (or an item of it, by ``path``)."""

    key: str
    path: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return f"<output of {self.key}{''.join(f'[{p!r}]' for p in self.path)}>"


@dataclass(frozen=True, slots=True)
class Node:
    """One invocation of a task in a graph.

    ``args``/``kwargs`` hold the call's arguments with ``OutputRef`` where an
    upstream output goes; ``upstream`` lists the nodes whose outputs are used,
    ``after`` the nodes ordered before this one by ``a >> b`` without data.
    """

    key: str
    task: Task[Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    upstream: tuple[str, ...]
    after: tuple[str, ...] = ()
    has_refs: bool = field(default=False)

    @property
    def deps(self) -> tuple[str, ...]:
        """Every node that must finish first: data upstreams, then ordering-only ones."""
        return self.upstream + tuple(k for k in self.after if k not in self.upstream)


def iter_refs(value: Any) -> Iterator[Any]:
    """Yield every leaf of nested lists, tuples, dicts and sets that is not a container."""
    if isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from iter_refs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_refs(v)
    else:
        yield value


def replace_leaves(value: Any, fn: Callable[[Any], Any]) -> Any:
    """Rebuild nested containers with ``fn`` applied to each leaf."""
    if isinstance(value, list):
        return [replace_leaves(v, fn) for v in value]
    if isinstance(value, tuple):
        items = [replace_leaves(v, fn) for v in value]
        # namedtuples are rebuilt with their own constructor
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, set | frozenset):
        return type(value)(replace_leaves(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: replace_leaves(v, fn) for k, v in value.items()}
    return fn(value)


class Graph:
    """A static, acyclic graph of task nodes, kept in a topological order.

    ``subgraphs`` maps the key of each workflow composed into this one (``"sub"``,
    ``"outer.sub"`` when nested) to that workflow's name; its tasks' keys start with
    ``"<key>."``. ``defaults`` is the run config the subgraphs' own ``config=`` gives
    (task keys prefixed), ``resources`` the resources they declare.
    """

    __slots__ = ("_down", "defaults", "nodes", "resources", "subgraphs")

    def __init__(
        self,
        nodes: list[Node],
        *,
        subgraphs: dict[str, str] | None = None,
        defaults: dict[str, Any] | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self.subgraphs: dict[str, str] = dict(subgraphs or {})
        self.defaults: dict[str, Any] = dict(defaults or {})
        self.resources: dict[str, Any] = dict(resources or {})
        by_key = {n.key: n for n in nodes}
        self.nodes: dict[str, Node] = {k: by_key[k] for k in _topological_order(by_key)}
        down: dict[str, list[str]] = {k: [] for k in self.nodes}
        for n in self.nodes.values():
            for d in n.deps:
                down[d].append(n.key)
        self._down = {k: tuple(v) for k, v in down.items()}

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, key: object) -> bool:
        return key in self.nodes

    def __repr__(self) -> str:
        return f"<Graph {len(self.nodes)} task{'' if len(self.nodes) == 1 else 's'}>"

    def upstream(self, key: str) -> tuple[str, ...]:
        return self.nodes[key].deps

    def subgraph_of(self, key: str) -> str | None:
        """The key of the innermost subgraph task ``key`` belongs to, or ``None``."""
        head, dot, _ = key.rpartition(".")
        while dot:
            if head in self.subgraphs:
                return head
            head, dot, _ = head.rpartition(".")
        return None

    def downstream(self, key: str) -> tuple[str, ...]:
        return self._down[key]

    def ancestors(self, key: str, depth: int | None = None) -> set[str]:
        """Keys upstream of ``key`` up to ``depth`` levels (all when ``None``)."""
        return self._walk(key, self.upstream, depth)

    def descendants(self, key: str, depth: int | None = None) -> set[str]:
        """Keys downstream of ``key`` up to ``depth`` levels (all when ``None``)."""
        return self._walk(key, self.downstream, depth)

    @staticmethod
    def _walk(key: str, step: Callable[[str], tuple[str, ...]], depth: int | None) -> set[str]:
        seen: set[str] = set()
        frontier = [key]
        level = 0
        while frontier and (depth is None or level < depth):
            nxt = []
            for k in frontier:
                for n in step(k):
                    if n not in seen:
                        seen.add(n)
                        nxt.append(n)
            frontier = nxt
            level += 1
        return seen


def _topological_order(nodes: dict[str, Node]) -> list[str]:
    """Kahn's algorithm, stable in definition order; raises ``CycleError`` on a cycle."""
    indegree = dict.fromkeys(nodes, 0)
    down: dict[str, list[str]] = {k: [] for k in nodes}
    for node in nodes.values():
        for d in node.deps:
            indegree[node.key] += 1
            down[d].append(node.key)
    order: list[str] = []
    ready = [k for k, deg in indegree.items() if deg == 0]
    i = 0
    while i < len(ready):
        k = ready[i]
        i += 1
        order.append(k)
        for n in down[k]:
            indegree[n] -= 1
            if indegree[n] == 0:
                ready.append(n)
    if len(order) < len(nodes):
        raise CycleError(f"the tasks form a cycle: {' -> '.join(_find_cycle(nodes, set(order)))}")
    return order


def _find_cycle(nodes: dict[str, Node], acyclic: set[str]) -> list[str]:
    """One cycle among the nodes not in ``acyclic``, as a path that returns to its start."""
    remaining = [k for k in nodes if k not in acyclic]
    start = remaining[0]
    path = [start]
    index = {start: 0}
    while True:
        nxt = next(d for d in nodes[path[-1]].deps if d not in acyclic)
        if nxt in index:
            cycle = [*path[index[nxt] :], nxt]
            return list(reversed(cycle))
        index[nxt] = len(path)
        path.append(nxt)
