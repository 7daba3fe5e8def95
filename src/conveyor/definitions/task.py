"""``@task``: a Python function that is the unit of execution, retry, timeout and logs."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from conveyor.definitions.durations import parse_duration, parse_memory
from conveyor.definitions.frames import current_frame
from conveyor.definitions.params import Param, classify_params, definition_locals
from conveyor.definitions.retry import RetryPolicy
from conveyor.errors import ConfigError, DefinitionError

R = TypeVar("R")

Hook = Callable[..., Any]
Tags = Mapping[str, str] | Sequence[str]
EnvValue = str | int | float | bool
EnvVars = Mapping[str, EnvValue]


def normalize_env_vars(env_vars: object, owner: str) -> dict[str, str]:
    """Environment variables as ``{name: text}``: numbers and booleans become ``str(value)``.

    Raises:
        ConfigError: not a dict, a name that the OS cannot hold, or a value that is
            not a string, a number or a boolean.
    """
    if env_vars is None:
        return {}
    if not isinstance(env_vars, Mapping):
        raise ConfigError(
            f"{owner}: env_vars={env_vars!r} must be a dict of names to values, "
            f"e.g. env_vars={{'REGION': 'eu', 'BATCH': 500}}"
        )
    out: dict[str, str] = {}
    for name, value in env_vars.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ConfigError(
                f"{owner}: environment variable name {name!r} must be a non-empty string "
                f"without '=' or NUL, e.g. 'API_URL'"
            )
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(
                f"{owner}: environment variable {name!r} = {value!r}: a value must be a "
                f"string, a number or a boolean; convert it to a string first"
            )
        text = str(value)
        if "\0" in text:
            raise ConfigError(f"{owner}: environment variable {name!r} holds a NUL character")
        out[name] = text
    return out


def check_cpu(cpu: object, owner: str) -> float | None:
    """Cores as a float, or ``None``; ``ConfigError`` unless a number > 0."""
    if cpu is None:
        return None
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not cpu > 0:
        raise ConfigError(f"{owner}: cpu={cpu!r} must be a number of cores > 0, e.g. 0.5 or 2")
    return float(cpu)


def check_memory(memory: object, owner: str) -> int | None:
    """Bytes, or ``None``; ``ConfigError`` naming ``owner`` for a size that does not read."""
    if memory is None:
        return None
    try:
        return parse_memory(memory)
    except ConfigError as e:
        raise ConfigError(f"{owner}: {e}") from None


def normalize_tags(tags: Tags | None, owner: str) -> dict[str, str]:
    """Tags as a dict of strings: a list of names becomes ``{name: ""}``, and a value that
    is not a string (a number, a list...) is written as JSON, as Dagster does."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        items = dict(tags)
    elif isinstance(tags, Sequence) and not isinstance(tags, str):
        items = dict.fromkeys(tags, "")
    else:
        raise DefinitionError(f"{owner}: tags must be a dict or a list of strings, got {tags!r}")
    out: dict[str, str] = {}
    for k, v in items.items():
        if not isinstance(k, str) or not k:
            raise DefinitionError(f"{owner}: a tag's name must be a non-empty string, got {k!r}")
        if isinstance(v, str):
            out[k] = v
            continue
        try:
            out[k] = json.dumps(v, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            raise DefinitionError(
                f"{owner}: tag {k!r} has the value {v!r}, which is neither a string nor "
                f"JSON (a number, bool, list or dict of them); write it as a string"
            ) from None
    return out


def normalize_hooks(
    hooks: Hook | Sequence[Hook] | None, owner: str, which: str
) -> tuple[Hook, ...]:
    if hooks is None:
        return ()
    if callable(hooks):
        seq: tuple[Hook, ...] = (hooks,)
    elif isinstance(hooks, Sequence) and not isinstance(hooks, str):
        seq = tuple(hooks)
    else:
        raise DefinitionError(f"{owner}: {which} hooks must be callables, got {hooks!r}")
    for h in seq:
        if not callable(h):
            raise DefinitionError(f"{owner}: {which} hooks must be callables, got {h!r}")
    return seq


def check_pool(pool: object, owner: str) -> str | None:
    """A pool's name as given to ``pool=``, or ``None``."""
    if pool is None:
        return None
    if not isinstance(pool, str) or not pool.strip() or pool != pool.strip():
        raise DefinitionError(
            f"{owner}: pool={pool!r} must be a pool's name, e.g. pool='warehouse'"
        )
    return pool


class Task(Generic[R]):
    """A function marked ``@task``.

    Called outside a workflow or a run it is the plain function. Inside a
    ``@workflow`` body it adds a node and returns a handle; inside a running
    ``@job`` body it runs as a recorded step and returns the value.
    """

    def __init__(
        self,
        fn: Callable[..., R],
        *,
        name: str | None = None,
        cpu: float | None = None,
        memory: int | str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | str | None = None,
        tags: Tags | None = None,
        description: str | None = None,
        on_success: Hook | Sequence[Hook] | None = None,
        on_failure: Hook | Sequence[Hook] | None = None,
        pool: str | None = None,
        env_vars: EnvVars | None = None,
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"@task decorates functions, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        owner = f"@task {self.name!r}"
        if not self.name.isidentifier():
            raise DefinitionError(f"{owner}: a task name must be a Python identifier")
        self.cpu = check_cpu(cpu, owner)
        self.memory = check_memory(memory, owner)
        self.env_vars = normalize_env_vars(env_vars, owner)
        try:
            self.timeout = None if timeout is None else parse_duration(timeout, what="timeout")
        except ConfigError as e:
            raise ConfigError(f"{owner}: {e}") from None
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"{owner}: timeout={timeout!r} must be more than 0 seconds")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(f"{owner}: retry must be a RetryPolicy, got {retry!r}")
        self.retry = retry
        self.tags = normalize_tags(tags, owner)
        self.description = description if description is not None else inspect.getdoc(fn)
        self.on_success = normalize_hooks(on_success, owner, "on_success")
        self.on_failure = normalize_hooks(on_failure, owner, "on_failure")
        self.pool = check_pool(pool, owner)
        self.params: tuple[Param, ...] = classify_params(fn, owner, definition_locals())
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__module__ = fn.__module__
        self.__qualname__ = getattr(fn, "__qualname__", self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        frame = current_frame.get()
        if frame is None:
            return self.fn(*args, **kwargs)
        return frame.call(self, args, kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Start the task and return a future with ``.result()``.

        Inside a running ``@job`` the step runs concurrently with the body;
        outside a run it runs at once and the future is already done.
        """
        frame = current_frame.get()
        if frame is None:
            from concurrent.futures import Future

            fut: Future[Any] = Future()
            try:
                fut.set_result(self.fn(*args, **kwargs))
            except Exception as e:
                fut.set_exception(e)
            return fut
        return frame.submit(self, args, kwargs)

    def map(self, items: Iterable[Any], **kwargs: Any) -> Any:
        """Run the task once per item (the first parameter), returning a list of futures.

        The returned list also has ``.result()``, which waits for all of them and
        returns their values in order. Other parameters are passed as ``kwargs``.
        """
        frame = current_frame.get()
        if frame is None:
            return [self.submit(item, **kwargs) for item in items]
        return frame.map(self, items, kwargs)

    def with_options(
        self,
        *,
        cpu: float | None = None,
        memory: int | str | None = None,
        env_vars: EnvVars | None = None,
        owner: str | None = None,
    ) -> Task[R]:
        """A copy of this task for one call: ``cpu``/``memory`` replace the task's,
        ``env_vars`` are added over the task's own (a name given again wins)."""
        owner = owner or f"@task {self.name!r}"
        new_cpu = check_cpu(cpu, owner)
        new_memory = check_memory(memory, owner)
        new_env = normalize_env_vars(env_vars, owner)
        clone = copy.copy(self)
        if new_cpu is not None:
            clone.cpu = new_cpu
        if new_memory is not None:
            clone.memory = new_memory
        if new_env:
            clone.env_vars = {**self.env_vars, **new_env}
        return clone

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


@overload
def task(fn: Callable[..., R], /) -> Task[R]: ...


@overload
def task(
    *,
    name: str | None = None,
    cpu: float | None = None,
    memory: int | str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | str | None = None,
    tags: Tags | None = None,
    description: str | None = None,
    on_success: Hook | Sequence[Hook] | None = None,
    on_failure: Hook | Sequence[Hook] | None = None,
    pool: str | None = None,
    env_vars: EnvVars | None = None,
) -> Callable[[Callable[..., R]], Task[R]]: ...


def task(fn: Callable[..., R] | None = None, /, **options: Any) -> Any:
    """Mark a function as a task, bare (``@task``) or with options (``@task(retry=...)``).

    Args:
        name: the task's name (default: the function's name).
        cpu: cores the task needs (> 0).
        memory: memory the task needs, e.g. ``"512m"``, ``"2g"``, ``"512Mi"``.
        retry: a ``RetryPolicy``; the job's ``retry=`` applies when not given.
        timeout: seconds or a duration string; past it the task fails with
            ``TaskTimeoutError``.
        tags: a dict of labels, or a list of names.
        description: shown in the UI (default: the docstring).
        on_success: callables run with the context after the task succeeds.
        on_failure: callables run with the context and the error after it fails.
        pool: a concurrency pool's name; the task waits for a slot of it before
            each attempt (``conveyor pools set NAME LIMIT`` sets the limit).
        env_vars: environment variables set while the task runs, as
            Datatailr's ``env_vars=``: a dict of names to strings, numbers or
            booleans (stored as ``str(value)``). In a worker process or a Dask
            worker they are set around the call and restored after; in the
            in-process executor they are set in the run's process for the
            call's duration, so tasks running at the same time there see them.
    """
    if fn is not None:
        return Task(fn, **options)

    def decorate(f: Callable[..., R]) -> Task[R]:
        return Task(f, **options)

    return decorate
