"""``@workflow``: a function whose body composes task calls into a static graph.

The body runs once, at definition time, under a composing frame: each task
call adds a node and returns a ``TaskHandle``; handles found anywhere in the
arguments become data dependencies, and ``a >> b`` orders without data.

A workflow called inside another's body is a subgraph (Dagster's ``@graph``):
its body runs again, inline, under the same frame, and its task keys are
prefixed with its own key (``"sub.extract"``). Handles passed to it are its
inputs; what its body returns (a handle, or a dict or tuple of them) is what
the call returns. A workflow whose body takes parameters composed alone gets
one placeholder task per parameter, which fails when run: such a workflow is
meant to be called inside another.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Container, Iterable
from typing import TYPE_CHECKING, Any

from conveyor.definitions.config import merged
from conveyor.definitions.frames import current_frame
from conveyor.definitions.graph import Graph, Node, OutputRef, iter_refs, replace_leaves
from conveyor.definitions.params import ParamKind
from conveyor.errors import ConfigError, DefinitionError, DuplicateTaskError, ExecutionError

if TYPE_CHECKING:
    from conveyor.definitions.job import Job
    from conveyor.definitions.task import EnvVars, Task


class _Pending:
    """A node while its workflow is still composing; its key may still change."""

    __slots__ = ("after", "args", "key", "kwargs", "task", "upstream")

    def __init__(self, task: Task[Any], key: str) -> None:
        self.task = task
        self.key = key
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.upstream: list[_Pending] = []
        self.after: list[_Pending] = []


class TaskHandle:
    """What a task call returns inside a ``@workflow`` body: a stand-in for its output.

    Pass it to other task calls to make a data dependency; index it
    (``handle["rows"]``, ``handle[0]``) to pass one item of the output; order
    without data with ``a >> b``; rename the node with ``.alias("name")``;
    size this call with ``.set_resources(cpu=..., memory=...)`` and give it
    environment variables with ``.update_env_vars({...})`` (Datatailr's
    per-call options; each returns the handle, so they chain).
    """

    __slots__ = ("_composer", "_node", "_path")

    def __init__(self, composer: Composer, node: _Pending, path: tuple[Any, ...] = ()) -> None:
        self._composer = composer
        self._node = node
        self._path = path

    @property
    def key(self) -> str:
        """The key of the task invocation in the workflow."""
        return self._node.key

    def alias(self, name: str) -> TaskHandle:
        """Give this invocation the key ``name`` instead of the automatic one."""
        self._composer.rename(self._node, name)
        return self

    def set_resources(
        self,
        resources: object = None,
        *,
        memory: int | str | None = None,
        cpu: float | None = None,
    ) -> TaskHandle:
        """Give this call its own ``cpu`` and/or ``memory``, over the task's own.

        ``resources`` may be any object with ``cpu`` and ``memory`` attributes
        (as Datatailr's ``Resources``) or a dict with those keys; ``cpu=`` and
        ``memory=`` given beside it win.
        """
        owner = self._owner("set_resources")
        if resources is not None:
            if isinstance(resources, dict):
                unknown = sorted(set(resources) - {"cpu", "memory"})
                if unknown:
                    raise ConfigError(
                        f"{owner}: unknown resource {unknown[0]!r}; the resources are "
                        f"'cpu' and 'memory'"
                    )
                got_cpu, got_memory = resources.get("cpu"), resources.get("memory")
            elif hasattr(resources, "cpu") or hasattr(resources, "memory"):
                got_cpu = getattr(resources, "cpu", None)
                got_memory = getattr(resources, "memory", None)
            else:
                raise ConfigError(
                    f"{owner}: resources={resources!r} must have cpu and memory (a dict such "
                    f"as {{'cpu': 2, 'memory': '1g'}}); or pass cpu=... and memory=..."
                )
            cpu = got_cpu if cpu is None else cpu
            memory = got_memory if memory is None else memory
        if cpu is None and memory is None:
            raise ConfigError(f"{owner}: give cpu=... and/or memory=..., e.g. cpu=2, memory='1g'")
        self._node.task = self._node.task.with_options(cpu=cpu, memory=memory, owner=owner)
        return self

    def update_env_vars(self, env_vars: EnvVars) -> TaskHandle:
        """Add environment variables for this call, over the task's own ``env_vars``."""
        owner = self._owner("update_env_vars")
        self._node.task = self._node.task.with_options(env_vars=env_vars, owner=owner)
        return self

    def _owner(self, method: str) -> str:
        if self._path:
            raise DefinitionError(
                f"{self!r}.{method}(): options belong to the call, not to an item of its "
                f"output; call it on the handle the task call returned"
            )
        return f"@workflow {self._composer.workflow_name!r}: {self.key}.{method}()"

    def __getitem__(self, item: Any) -> TaskHandle:
        return TaskHandle(self._composer, self._node, (*self._path, item))

    def __rshift__(self, other: TaskHandle | Iterable[TaskHandle]) -> Any:
        for h in _handles(other, ">>"):
            h._node.after.append(self._node)
        return other

    def __rrshift__(self, other: Iterable[TaskHandle]) -> TaskHandle:
        for h in _handles(other, ">>"):
            self._node.after.append(h._node)
        return self

    def _not_a_value(self, use: str) -> DefinitionError:
        """The error for using a handle as if it were the task's output."""
        return DefinitionError(
            f"{self!r} stands for the output of task {self.key!r}, which does not exist yet: "
            f"a @workflow body runs once, when it is defined, to compose task calls into a "
            f"graph, so a handle cannot be {use}. Pass the handle to a task that computes with "
            f"the value, or use @job, whose body runs at run time with real values"
        )

    def __iter__(self) -> Any:
        raise self._not_a_value("unpacked or iterated (index it instead: out[0], out['rows'])")

    def __contains__(self, item: object) -> bool:
        raise self._not_a_value("searched with 'in'")

    def __len__(self) -> int:
        raise self._not_a_value("measured with len()")

    def __bool__(self) -> bool:
        raise self._not_a_value("tested with if/while/and/or/not")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskHandle):
            return self is other
        raise self._not_a_value("compared with ==")

    def __ne__(self, other: object) -> bool:
        if isinstance(other, TaskHandle):
            return self is not other
        raise self._not_a_value("compared with !=")

    __hash__ = object.__hash__

    def __lt__(self, other: object) -> bool:
        raise self._not_a_value("compared with <")

    def __le__(self, other: object) -> bool:
        raise self._not_a_value("compared with <=")

    def __gt__(self, other: object) -> bool:
        raise self._not_a_value("compared with >")

    def __ge__(self, other: object) -> bool:
        raise self._not_a_value("compared with >=")

    def _arithmetic(self, *other: object) -> Any:
        raise self._not_a_value("used in arithmetic")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _arithmetic
    __mod__ = __rmod__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _arithmetic
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _arithmetic
    __lshift__ = __rlshift__ = __neg__ = __pos__ = __abs__ = __invert__ = _arithmetic

    def __int__(self) -> int:
        raise self._not_a_value("converted with int()")

    def __float__(self) -> float:
        raise self._not_a_value("converted with float()")

    def __index__(self) -> int:
        raise self._not_a_value("used as an index")

    def __format__(self, spec: str) -> str:
        raise self._not_a_value("formatted into a string (f'...{handle}')")

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise self._not_a_value("called")

    def __repr__(self) -> str:
        return f"<TaskHandle {self.key}{''.join(f'[{p!r}]' for p in self._path)}>"


def _handles(value: Any, op: str) -> list[TaskHandle]:
    items = [value] if isinstance(value, TaskHandle) else list(value)
    for h in items:
        if not isinstance(h, TaskHandle):
            raise DefinitionError(f"'{op}' orders task calls; got {h!r}")
    return items


class KeyCounter:
    """Hands out ``name``, ``name_2``, ``name_3``... skipping keys already taken.

    Remembers where each name's numbering stopped, so that calling one task
    N times costs O(N), not O(N^2).
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def next(self, name: str, taken: Container[str]) -> str:
        n = self._next.get(name, 1)
        key = name if n == 1 else f"{name}_{n}"
        while key in taken:
            n += 1
            key = f"{name}_{n}"
        self._next[name] = n + 1
        return key


class _Taken:
    """The keys in use: task keys and subgraph keys share one namespace."""

    __slots__ = ("composer",)

    def __init__(self, composer: Composer) -> None:
        self.composer = composer

    def __contains__(self, key: object) -> bool:
        return key in self.composer.by_key or key in self.composer.subgraphs


class Composer:
    """The frame active while a ``@workflow`` body runs: it records nodes.

    While a subgraph composes, ``prefix`` is its key and a dot, and its
    resources join ``resource_keys``.
    """

    def __init__(self, workflow_name: str, resource_keys: Iterable[str]) -> None:
        self.workflow_name = workflow_name
        self.resource_keys = frozenset(resource_keys)
        self.nodes: list[_Pending] = []
        self.by_key: dict[str, _Pending] = {}
        self.prefix = ""
        self.subgraphs: dict[str, str] = {}
        self.defaults: dict[str, Any] = {}
        self.sub_resources: dict[str, Any] = {}
        self.composing: list[Callable[..., Any]] = []
        self._keys = KeyCounter()
        self._taken = _Taken(self)

    def _auto_key(self, name: str) -> str:
        return self._keys.next(self.prefix + name, self._taken)

    def rename(self, node: _Pending, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise DefinitionError(
                f"@workflow {self.workflow_name!r}: alias {name!r} must be a Python identifier"
            )
        head, dot, _ = node.key.rpartition(".")
        name = f"{head}{dot}{name}"
        if name == node.key:
            return
        if name in self.subgraphs:
            raise DuplicateTaskError(
                f"@workflow {self.workflow_name!r}: alias {name!r} is already the key of "
                f"subgraph {self.subgraphs[name]!r}; choose another alias"
            )
        if name in self.by_key:
            raise DuplicateTaskError(
                f"@workflow {self.workflow_name!r}: alias {name!r} is already the key of "
                f"another call of {self.by_key[name].task.name!r}; choose another alias"
            )
        del self.by_key[node.key]
        node.key = name
        self.by_key[name] = node

    def call(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskHandle:
        node = _Pending(task, self._auto_key(task.name))
        self._check_binding(node.key, task, args, kwargs)
        node.args, node.kwargs = args, kwargs
        seen: set[int] = set()
        for leaf in iter_refs((args, kwargs)):
            if isinstance(leaf, TaskHandle):
                if leaf._composer is not self:
                    raise DefinitionError(
                        f"@workflow {self.workflow_name!r}: {leaf!r} comes from another workflow"
                    )
                if id(leaf._node) not in seen:
                    seen.add(id(leaf._node))
                    node.upstream.append(leaf._node)
        self.nodes.append(node)
        self.by_key[node.key] = node
        return TaskHandle(self, node)

    def _check_binding(
        self, key: str, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        owner = f"@workflow {self.workflow_name!r}: task {task.name!r} (key {key!r})"
        try:
            bound = inspect.signature(task.fn).bind_partial(*args, **kwargs)
        except TypeError as e:
            raise DefinitionError(f"{owner}: {e}") from None
        for p in task.params:
            if p.name in bound.arguments or not p.required or p.kind is not ParamKind.VALUE:
                continue
            if p.name in self.resource_keys:
                continue
            raise DefinitionError(
                f"{owner}: parameter {p.name!r} has no upstream, no config and no resource; "
                f"pass it in the call ({task.name}({p.name}=...)), give it a default, annotate "
                f"it with a Config subclass, or declare a resource named {p.name!r}"
            )

    def compose_sub(self, job: Job, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Compose workflow ``job`` here as a subgraph and return what its body returns.

        Raises:
            DefinitionError: ``job`` is being composed already (a workflow that
                contains itself), its arguments do not fit its body, or it calls no task.
        """
        owner = f"@workflow {self.workflow_name!r}"
        if any(fn is job.fn for fn in self.composing):
            raise DefinitionError(
                f"{owner}: workflow {job.name!r} calls itself (directly or through the "
                f"workflows it calls); a workflow cannot contain itself, so call the tasks "
                f"it repeats instead"
            )
        try:
            bound = inspect.signature(job.fn).bind(*args, **kwargs)
        except TypeError as e:
            raise DefinitionError(
                f"{owner}: subgraph {job.name!r}: {e}; pass each of its inputs, e.g. "
                f"{job.name}(upstream_handle)"
            ) from None
        key = self._keys.next(self.prefix + job.name, self._taken)
        self.subgraphs[key] = job.name
        outer = (self.prefix, self.resource_keys)
        self.prefix = key + "."
        self.resource_keys = self.resource_keys | frozenset(job.resources)
        for name, value in job.resources.items():
            self.sub_resources.setdefault(name, value)
        self.composing.append(job.fn)
        before = len(self.nodes)
        try:
            result = job.fn(*bound.args, **bound.kwargs)
        finally:
            self.composing.pop()
            # The subgraph's resources are the job's from here on, for the calls after it.
            self.prefix = outer[0]
            self.resource_keys = outer[1] | frozenset(job.resources)
        if len(self.nodes) == before:
            raise DefinitionError(f"{owner}: subgraph {job.name!r} calls no task")
        own = job.default_config
        prefixed: dict[str, Any] = {}
        if own.get("tasks"):
            prefixed["tasks"] = {f"{key}.{k}": v for k, v in own["tasks"].items()}
        if own.get("resources"):
            prefixed["resources"] = own["resources"]
        self.defaults = merged(self.defaults, prefixed)
        return result

    def submit(self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise DefinitionError(
            f"@workflow {self.workflow_name!r}: {task.name}.submit() runs inside a running @job; "
            f"in a workflow, call the task ({task.name}(...)) and independent calls run in "
            f"parallel where the executor allows"
        )

    def map(self, task: Task[Any], items: Iterable[Any], kwargs: dict[str, Any]) -> Any:
        raise DefinitionError(
            f"@workflow {self.workflow_name!r}: {task.name}.map() needs the items at run time; "
            f"use a @job, whose body runs at run time, for dynamic fan-out"
        )

    def build(self) -> Graph:
        """Freeze the recorded calls into a ``Graph`` (raises ``CycleError`` on a cycle)."""

        def to_ref(leaf: Any) -> Any:
            if isinstance(leaf, TaskHandle):
                return OutputRef(leaf.key, leaf._path)
            return leaf

        nodes = []
        for p in self.nodes:
            has_refs = bool(p.upstream)
            nodes.append(
                Node(
                    key=p.key,
                    task=p.task,
                    args=replace_leaves(p.args, to_ref) if has_refs else p.args,
                    kwargs=replace_leaves(p.kwargs, to_ref) if has_refs else p.kwargs,
                    upstream=tuple(u.key for u in p.upstream),
                    after=tuple(dict.fromkeys(a.key for a in p.after)),
                    has_refs=has_refs,
                )
            )
        return Graph(
            nodes,
            subgraphs=self.subgraphs,
            defaults=self.defaults,
            resources=self.sub_resources,
        )


def compose(fn: Callable[[], Any], name: str, resource_keys: Iterable[str]) -> Graph:
    """Run a workflow body under a composing frame and return its graph.

    An exception in the body propagates unchanged.
    """
    if current_frame.get() is not None:
        raise DefinitionError(
            f"@workflow {name!r} cannot be defined inside another workflow or run"
        )
    sig = inspect.signature(fn)
    inputs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.kind is p.POSITIONAL_ONLY:
            raise DefinitionError(
                f"@workflow {name!r}: parameter {p.name!r}: a workflow's inputs are named "
                f"parameters (def {name}(rows): ...); give task parameters a Config class, "
                f"or use @job for a function whose parameters are config"
            )
    composer = Composer(name, resource_keys)
    composer.composing.append(fn)
    token = current_frame.set(composer)
    try:
        for p in sig.parameters.values():
            if p.default is inspect.Parameter.empty:
                inputs[p.name] = composer.call(_input_task(name, p.name), (), {})
        fn(**inputs)
    finally:
        current_frame.reset(token)
    if len(composer.nodes) == len(inputs):
        raise DefinitionError(f"@workflow {name!r} calls no task; call at least one @task")
    return composer.build()


def _input_task(workflow: str, name: str) -> Task[Any]:
    """The placeholder for input ``name`` of a workflow composed on its own."""
    from conveyor.definitions.task import Task

    def graph_input() -> Any:
        raise ExecutionError(
            f"input {name!r} of workflow {workflow!r} has no value: a workflow whose body "
            f"takes parameters is a graph to call inside another workflow "
            f"({workflow}(upstream_handle)); to run it alone, select the tasks after the "
            f"input and pass input_values={{{name!r}: ...}}"
        )

    return Task(graph_input, name=name, description=f"input {name!r} of workflow {workflow!r}")
