"""Excel add-ins: Python functions that Excel calls as worksheet functions.

``Addin(name, description)`` collects functions through ``@addin.expose(...)``;
``ExcelAddin(name, entrypoint=addin)`` serves them as a workload. A function's
signature is Excel's contract: every argument and the result must be one of
``int | float | str | bool | list`` (lists of lists for ranges), so a bad
annotation is refused when the function is exposed, with every violation of it
in one ``DefinitionError``, rather than when a spreadsheet first calls it.

A streaming function (``streaming=True``) pushes values as they come, either
through a first parameter ``queue: Queue`` (``queue.push(value)``) or by being a
generator; a function with ``progressbar=True`` takes the queue too and reports
``queue.progress(done, message)`` before returning its result. This module is
pure: it defines and checks; ``conveyor.execution.addin_server`` serves.
"""

from __future__ import annotations

import collections.abc
import inspect
import keyword
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from conveyor.definitions.addin_values import SCALARS, Mismatch, ValueType, kind_of
from conveyor.definitions.workloads import Workload
from conveyor.errors import ConfigError, DefinitionError

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GENERATORS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
)


class Queue:
    """What a streaming or progress-reporting function is handed as its first argument.

    The add-in server passes a live one; ``push`` sends a value to the cell (the
    cell shows the latest), ``progress`` reports how far a long call has got.
    When the spreadsheet stops listening, ``push`` raises ``StreamClosed``: let
    it propagate and the function ends.
    """

    def push(self, value: Any) -> None:
        """Send ``value`` to the calling cell."""
        raise NotImplementedError

    def result(self, value: Any) -> None:
        """Same as ``push`` (the older Datatailr name)."""
        self.push(value)

    def progress(self, done: float, message: str = "") -> None:
        """Report progress: ``done`` from 0 to 1, and a short message."""
        raise NotImplementedError


class StreamClosed(BaseException):
    """Raised by ``Queue.push`` inside a function whose caller has gone away.

    A ``BaseException`` so that the usual ``except Exception`` in user code
    does not swallow it: it is a signal to stop, as cancellation is.
    """


@dataclass(frozen=True, slots=True)
class Parameter:
    """One argument of an exposed function, as Excel sees it."""

    name: str
    type: ValueType
    required: bool
    default: Any = None


@dataclass(frozen=True, slots=True)
class ExposedFunction:
    """A function of an add-in, checked, with what Excel needs to know of it."""

    name: str
    function: Callable[..., Any]
    description: str
    help: str
    parameters: tuple[Parameter, ...]
    result: ValueType
    volatile: bool
    streaming: bool
    progressbar: bool
    takes_queue: bool
    generator: bool

    def __repr__(self) -> str:
        args = ", ".join(f"{p.name}: {p.type.describe()}" for p in self.parameters)
        return f"<ExposedFunction {self.name}({args}) -> {self.result.describe()}>"

    def bind(self, args: Any) -> list[Any]:
        """The positional arguments for one call, from JSON ``args``.

        ``args`` is a list (positional) or an object (by name). Raises
        ``ConfigError`` naming every bad argument: the type wanted and the one got,
        a missing one, or extra ones.
        """
        if args is None:
            args = []
        if isinstance(args, Mapping):
            unknown = sorted(set(args) - {p.name for p in self.parameters})
            if unknown:
                raise ConfigError(f"{self.name}: unknown arguments {', '.join(unknown)}")
            given = [args.get(p.name, _MISSING) for p in self.parameters]
        elif isinstance(args, list):
            if len(args) > len(self.parameters):
                raise ConfigError(
                    f"{self.name}: takes {len(self.parameters)} arguments, got {len(args)}"
                )
            given = [*args, *[_MISSING] * (len(self.parameters) - len(args))]
        else:
            raise ConfigError(f"{self.name}: args must be a list or an object, got {kind_of(args)}")
        values: list[Any] = []
        problems: list[str] = []
        for parameter, value in zip(self.parameters, given, strict=True):
            if value is _MISSING or (value is None and not parameter.required):
                if parameter.required:
                    wanted = parameter.type.describe()
                    problems.append(f"argument {parameter.name} ({wanted}) is missing")
                values.append(parameter.default)
                continue
            try:
                values.append(parameter.type.convert(value))
            except Mismatch as e:
                problems.append(f"argument {parameter.name}{e.where} wants {e.wanted}, got {e.got}")
        if problems:
            raise ConfigError(f"{self.name}: " + "; ".join(problems))
        return values

    def check_result(self, value: Any) -> Any:
        """``value`` as the declared result type, or ``ConfigError`` saying how it is not."""
        try:
            return self.result.convert(value)
        except Mismatch as e:
            raise ConfigError(
                f"{self.name} returned a bad value: the result{e.where} wants {e.wanted}, "
                f"got {e.got}"
            ) from None


_MISSING: Any = object()


class Addin:
    """An Excel add-in: a named set of exposed functions.

    Example:
        >>> pricer = Addin("Pricer", "Option pricing")
        >>> @pricer.expose(description="Adds two numbers")
        ... def add(a: float, b: float) -> float:
        ...     return a + b
        >>> list(pricer.functions)
        ['add']
    """

    def __init__(self, name: str, description: str = "") -> None:
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"Addin(name={name!r}): the name must be a non-empty string")
        self.name = name
        self.description = description
        self.functions: dict[str, ExposedFunction] = {}
        # Where it was made, so that a server process can import it again by name.
        self.module: str = sys._getframe(1).f_globals.get("__name__", "__main__")

    def __repr__(self) -> str:
        return f"<Addin {self.name!r}: {len(self.functions)} functions>"

    @property
    def namespace(self) -> str:
        """The prefix of the functions in Excel (``PRICER.ADD``): the name's letters and digits."""
        letters = re.sub(r"[^A-Za-z0-9]", "", self.name).upper()
        return letters if letters and letters[0].isalpha() else f"X{letters}"

    def expose(
        self,
        description: str = "",
        help: str = "",
        volatile: bool = False,
        streaming: bool = False,
        progressbar: bool = False,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Make the decorated function callable from Excel.

        Args:
            description: One line shown in Excel's function picker.
            help: Longer help text (shown as the function's help).
            volatile: Recalculated whenever anything in the workbook is.
            streaming: Pushes several values over time (a ``queue`` first
                parameter, or a generator); the cell shows the latest.
            progressbar: Takes a ``queue`` first parameter and reports
                ``queue.progress(done, message)`` while it works.
            name: The name in Excel, when not the function's own.

        Raises:
            DefinitionError: listing every problem of the signature at once.
        """

        def decorate(fn: F) -> F:
            exposed = _check(
                fn,
                name=name or str(getattr(fn, "__name__", "")),
                description=description,
                help=help,
                volatile=volatile,
                streaming=streaming,
                progressbar=progressbar,
            )
            if exposed.name in self.functions:
                raise DefinitionError(
                    f"Addin {self.name!r}: a function named {exposed.name!r} is exposed twice; "
                    "rename one or pass expose(name=...)"
                )
            self.functions[exposed.name] = exposed
            return fn

        return decorate

    def reference(self) -> str:
        """``"module:attr"`` naming this add-in, for a process that imports it again.

        Raises:
            DefinitionError: it is not a global of the module that made it.
        """
        module = sys.modules.get(self.module)
        for attr, value in vars(module).items() if module is not None else ():
            if value is self:
                return f"{self.module}:{attr}"
        raise DefinitionError(
            f"Addin {self.name!r}: assign it to a global of module {self.module} "
            f"(or give ExcelAddin the entrypoint 'module:attr')"
        )

    def function(self, name: str) -> ExposedFunction:
        """The exposed function called ``name`` (``KeyError`` when there is none)."""
        return self.functions[name]


def _check(
    fn: Callable[..., Any],
    *,
    name: str,
    description: str,
    help: str,
    volatile: bool,
    streaming: bool,
    progressbar: bool,
) -> ExposedFunction:
    label = f"expose({name or fn!r})"
    if not callable(fn):
        raise DefinitionError(f"{label}: {fn!r} is not a function")
    problems: list[str] = []
    if not _NAME.match(name) or keyword.iskeyword(name):
        problems.append(f"the name {name!r} must be letters, digits and _ (not first a digit)")
    generator = inspect.isgeneratorfunction(fn)
    if inspect.isasyncgenfunction(fn):
        problems.append("async generators are not supported: use a generator or a queue")
    if volatile and streaming:
        problems.append("a function cannot be both volatile and streaming (Excel refuses it)")
    if generator and not streaming:
        problems.append("it is a generator: expose it with streaming=True")
    if generator and progressbar:
        problems.append("a generator cannot report progress: take a queue instead")
    if inspect.iscoroutinefunction(fn) and (streaming or progressbar):
        problems.append("an async function cannot stream or report progress: make it plain def")
    hints = _hints(fn, problems)
    signature = inspect.signature(fn)
    parameters: list[Parameter] = []
    takes_queue = False
    for index, p in enumerate(signature.parameters.values()):
        if p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD:
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            problems.append(f"{star}{p.name}: Excel passes a fixed list of arguments")
            continue
        hint = hints.get(p.name, _MISSING)
        if index == 0 and _is_queue(p.name, hint):
            takes_queue = True
            continue
        if hint is _MISSING or hint is inspect.Parameter.empty:
            problems.append(f"argument {p.name} has no type: annotate int, float, str, bool, list")
            continue
        if hint is _UNRESOLVED:
            continue
        value_type = _value_type(hint)
        if value_type is None:
            problems.append(
                f"argument {p.name}: {_show(hint)} is not int, float, str, bool or list"
            )
            continue
        required = p.default is inspect.Parameter.empty
        parameters.append(Parameter(p.name, value_type, required, None if required else p.default))
    if (streaming or progressbar) and not takes_queue and not generator:
        problems.append("streaming and progressbar functions take a first parameter queue: Queue")
    if takes_queue and not (streaming or progressbar):
        problems.append("it takes a queue: expose it with streaming=True or progressbar=True")
    result = _result_type(hints.get("return", _MISSING), generator, problems)
    if problems:
        raise DefinitionError(f"{label}: " + "; ".join(problems))
    assert result is not None
    return ExposedFunction(
        name=name,
        function=fn,
        description=description or (inspect.getdoc(fn) or "").split("\n", 1)[0],
        help=help,
        parameters=tuple(parameters),
        result=result,
        volatile=volatile,
        streaming=streaming,
        progressbar=progressbar,
        takes_queue=takes_queue,
        generator=generator,
    )


_UNRESOLVED: Any = object()


def _hints(fn: Callable[..., Any], problems: list[str]) -> dict[str, Any]:
    """The resolved annotations; one that cannot be resolved is a problem named once."""
    try:
        return typing.get_type_hints(fn)
    except Exception:
        pass
    raw = getattr(fn, "__annotations__", {})
    namespace = getattr(fn, "__globals__", {})
    hints: dict[str, Any] = {}
    for key, annotation in raw.items():
        if not isinstance(annotation, str):
            hints[key] = annotation
            continue
        try:
            hints[key] = eval(annotation, namespace)
        except Exception as e:
            hints[key] = _UNRESOLVED
            what = "the result" if key == "return" else f"argument {key}"
            problems.append(f"{what}: the annotation {annotation!r} cannot be resolved ({e})")
    return hints


def _is_queue(name: str, hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, Queue):
        return True
    return name == "queue" and (hint is _MISSING or getattr(hint, "__name__", "") == "Queue")


def _value_type(hint: Any) -> ValueType | None:
    if hint in SCALARS:
        return ValueType(hint)
    if hint is list or hint is Sequence:
        return ValueType(list)
    origin = typing.get_origin(hint)
    if origin is list:
        args = typing.get_args(hint)
        if len(args) != 1:
            return None
        item = _value_type(args[0])
        return None if item is None else ValueType(list, item)
    return None


def _result_type(hint: Any, generator: bool, problems: list[str]) -> ValueType | None:
    if hint is _UNRESOLVED:
        return None
    if hint is _MISSING:
        problems.append("the result has no type: annotate -> int, float, str, bool or list")
        return None
    if generator:
        if typing.get_origin(hint) in _GENERATORS and typing.get_args(hint):
            hint = typing.get_args(hint)[0]
        else:
            problems.append(f"the result: a generator is annotated Iterator[T], not {_show(hint)}")
            return None
    value_type = _value_type(hint)
    if value_type is None:
        problems.append(f"the result: {_show(hint)} is not int, float, str, bool or list")
    return value_type


def _show(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


@dataclass(frozen=True, eq=False, repr=False)
class ExcelAddin(Workload):
    """An ``Addin`` served to Excel, behind the proxy at ``/apps/<name>/``.

    Its manifest, for Excel's "Upload my add-in", is at
    ``/apps/<name>/manifest.xml``.

    Attributes:
        entrypoint: the ``Addin`` itself, ``"module:attr"`` naming one, or (as in
            Datatailr) a callable that serves the add-in on the port it is given.
    """

    kind: ClassVar[str] = "addin"

    entrypoint: Any
    # Its server answers here (an Addin given as the entrypoint is served by Conveyor's).
    health: str | None = field(default="/health", kw_only=True)

    def _check_entrypoint(self, owner: str) -> None:
        if isinstance(self.entrypoint, Addin):
            return
        super()._check_entrypoint(owner)

    @property
    def addin(self) -> Addin | None:
        """The ``Addin`` when it was given as the entrypoint, else ``None``."""
        return self.entrypoint if isinstance(self.entrypoint, Addin) else None

    def entrypoint_ref(self) -> str:
        addin = self.addin
        if addin is None:
            return super().entrypoint_ref()
        return addin.reference()

    def spec(self) -> dict[str, Any]:
        addin = self.addin
        functions = list(addin.functions) if addin is not None else None
        return {**super().spec(), "functions": functions}
