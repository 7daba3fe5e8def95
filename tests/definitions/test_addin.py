"""Excel add-ins as defined: what may be exposed, and how a call's arguments are checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.definitions.addin import Addin, ExcelAddin, Mismatch, Queue, ValueType
from conveyor.errors import ConfigError, DefinitionError


class Point:
    pass


PRICER = Addin("Options Pricer", "Option pricing functions")


@PRICER.expose(description="Adds two numbers", help="Give a and b")
def add(a: float, b: int = 2) -> float:
    return a + b


@PRICER.expose(description="Ticks", streaming=True)
def tick(queue: Queue, start: int) -> int:
    queue.push(start)
    return start


@PRICER.expose(streaming=True)
def count(n: int) -> Iterator[int]:
    """Counts to n."""
    yield from range(n)


@PRICER.expose(progressbar=True, volatile=True)
def slow(queue: Queue, grid: list[list[float]]) -> list[list[float]]:
    return grid


def test_exposed_functions_keep_their_signature_for_excel() -> None:
    assert list(PRICER.functions) == ["add", "tick", "count", "slow"]
    assert repr(PRICER) == "<Addin 'Options Pricer': 4 functions>"
    assert PRICER.namespace == "OPTIONSPRICER"
    fn = PRICER.function("add")
    assert repr(fn) == "<ExposedFunction add(a: float, b: int) -> float>"
    assert (fn.description, fn.help) == ("Adds two numbers", "Give a and b")
    assert [(p.name, p.required, p.default) for p in fn.parameters] == [
        ("a", True, None),
        ("b", False, 2),
    ]
    tick_fn = PRICER.function("tick")
    assert tick_fn.takes_queue
    assert tick_fn.streaming
    assert not tick_fn.generator
    assert [p.name for p in tick_fn.parameters] == ["start"]
    count_fn = PRICER.function("count")
    assert count_fn.generator
    assert count_fn.result == ValueType(int)
    assert count_fn.description == "Counts to n."
    slow_fn = PRICER.function("slow")
    assert slow_fn.parameters[0].type == ValueType(list, ValueType(list, ValueType(float)))
    assert (slow_fn.parameters[0].type.excel_type, slow_fn.result.dimensionality) == (
        "any",
        "matrix",
    )


def test_every_problem_of_a_signature_is_reported_at_once() -> None:
    addin = Addin("Bad", "")
    with pytest.raises(DefinitionError) as caught:

        @addin.expose()
        def bad(x, y: dict, p: Point, *args: int, z: Nope, **kw: int) -> set:  # type: ignore[no-untyped-def, name-defined, type-arg]  # noqa: F821
            return set()

    message = str(caught.value)
    for part in (
        "expose('bad')",
        "argument x has no type",
        "argument y: dict is not int, float, str, bool or list",
        "argument p: Point is not",
        "*args: Excel passes a fixed list",
        "**kw: Excel passes a fixed list",
        "argument z: the annotation 'Nope' cannot be resolved",
        "the result: set is not",
    ):
        assert part in message
    assert addin.functions == {}


def _expose(addin: Addin | None = None, **options: Any) -> Any:
    return (addin or Addin("T", "")).expose(**options)


def no_result(a: int):  # type: ignore[no-untyped-def]
    return a


def dict_result(a: int) -> dict[str, int]:
    return {}


def gen(a: int) -> Iterator[int]:
    yield a


def gen_bad_result(a: int) -> int:  # type: ignore[misc]
    yield a


def queue_no_stream(queue: Queue, a: int) -> int:
    return a


def plain(a: int) -> int:
    return a


async def async_plain(a: int) -> int:
    return a


def tuple_arg(a: tuple[int, int]) -> int:
    return 0


def dict_list_arg(a: list[dict[str, int]]) -> int:
    return 0


def two_arg_list(a: list[int, int]) -> int:  # type: ignore[type-arg]
    return 0


@pytest.mark.parametrize(
    ("fn", "options", "problem"),
    [
        (no_result, {}, "the result has no type"),
        (dict_result, {}, "the result: dict[str, int] is not"),
        (gen, {}, "it is a generator: expose it with streaming=True"),
        (gen, {"streaming": True, "progressbar": True}, "a generator cannot report progress"),
        (gen_bad_result, {"streaming": True}, "a generator is annotated Iterator[T], not int"),
        (queue_no_stream, {}, "it takes a queue: expose it with streaming=True"),
        (plain, {"streaming": True}, "take a first parameter queue: Queue"),
        (plain, {"progressbar": True}, "take a first parameter queue: Queue"),
        (queue_no_stream, {"streaming": True, "volatile": True}, "both volatile and streaming"),
        (async_plain, {"progressbar": True}, "an async function cannot stream"),
        (tuple_arg, {}, "argument a: tuple[int, int] is not"),
        (dict_list_arg, {}, "argument a: list[dict[str, int]] is not"),
        (two_arg_list, {}, "argument a: list[int, int] is not"),
        (plain, {"name": "2fast"}, "the name '2fast' must be letters"),
        (plain, {"name": "class"}, "the name 'class' must be letters"),
    ],
)
def test_a_bad_signature_is_refused_naming_the_problem(
    fn: Any, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DefinitionError, match="expose") as caught:
        _expose(**options)(fn)
    assert problem in str(caught.value)


def test_a_name_is_exposed_once_and_an_addin_needs_a_name() -> None:
    addin = Addin("T", "")
    addin.expose()(plain)
    with pytest.raises(DefinitionError, match="'plain' is exposed twice"):
        addin.expose()(plain)
    addin.expose(name="plain2")(plain)
    assert list(addin.functions) == ["plain", "plain2"]
    for bad in ("", "  ", None, 3):
        with pytest.raises(DefinitionError, match="non-empty string"):
            Addin(bad, "")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="is not a function"):
        addin.expose()(42)  # type: ignore[type-var]


def test_arguments_are_converted_or_refused_naming_each_one() -> None:
    fn = PRICER.function("add")
    assert fn.bind([1, 3.0]) == [1.0, 3]
    assert fn.bind({"a": 1.5}) == [1.5, 2]
    assert fn.bind([1, None]) == [1.0, 2]  # an empty optional cell is its default
    for args, message in [
        (["x", 2.5], "add: argument a wants float, got str; argument b wants int, got float"),
        ([True, 1], "argument a wants float, got bool"),
        ([1, False], "argument b wants int, got bool"),
        ([[1], 1], "argument a wants float, got list"),
        ([{"v": 1}], "argument a wants float, got object"),
        ([None], "argument a wants float, got null"),
        ([], "argument a (float) is missing"),
        (None, "argument a (float) is missing"),
        ([1, 2, 3], "add: takes 2 arguments, got 3"),
        ({"a": 1, "c": 2, "d": 3}, "add: unknown arguments c, d"),
        ("1, 2", "add: args must be a list or an object, got str"),
    ]:
        with pytest.raises(ConfigError) as caught:
            fn.bind(args)
        assert message in str(caught.value), args


def test_ranges_are_lists_of_lists_of_the_declared_type() -> None:
    slow = PRICER.function("slow")
    assert slow.bind([[[1, 2.5], [3, 4]]]) == [[[1.0, 2.5], [3.0, 4.0]]]
    with pytest.raises(ConfigError, match=r"argument grid\[1\]\[0\] wants float, got str"):
        slow.bind([[[1, 2], ["x"]]])
    with pytest.raises(ConfigError, match=r"argument grid wants list\[list\[float\]\], got float"):
        slow.bind([1.5])
    bare = ValueType(list)
    assert bare.convert([[1, "a", True, None]]) == [[1, "a", True, None]]
    with pytest.raises(
        Mismatch, match=r"\[0\]\[1\] wants int, float, str, bool or a list, got obj"
    ):
        bare.convert([[1, {"a": 1}]])


def test_a_result_of_the_wrong_type_is_refused() -> None:
    fn = PRICER.function("add")
    assert fn.check_result(3) == 3.0
    with pytest.raises(ConfigError, match="add returned a bad value: the result wants float"):
        fn.check_result("3")
    with pytest.raises(ConfigError, match="the result wants a finite float, got nan"):
        fn.check_result(float("nan"))


def test_an_excel_addin_is_a_workload_serving_an_addin() -> None:
    workload = ExcelAddin("pricer", PRICER, description="prices", env_vars={"A": "1"})
    assert workload.kind == "addin"
    assert workload.addin is PRICER
    assert workload.health == "/health"
    assert workload.base_path == "/apps/pricer"
    assert workload.entrypoint_ref() == "tests.definitions.test_addin:PRICER"
    spec = workload.spec()
    assert spec["entrypoint"] == "tests.definitions.test_addin:PRICER"
    assert spec["functions"] == ["add", "tick", "count", "slow"]
    assert spec["env_vars"] == {"A": "1"}
    assert repr(workload) == "<ExcelAddin pricer (tests.definitions.test_addin:PRICER)>"
    by_name = ExcelAddin("other", "examples.excel_addin:addin")
    assert by_name.addin is None
    assert by_name.spec()["functions"] is None


def test_a_bad_excel_addin_is_refused() -> None:
    with pytest.raises(DefinitionError, match="entrypoint"):
        ExcelAddin("pricer", 42)
    with pytest.raises(DefinitionError, match="entrypoint 'not a ref'"):
        ExcelAddin("pricer", "not a ref")
    with pytest.raises(DefinitionError, match="workload name"):
        ExcelAddin("no spaces", PRICER)
    local = Addin("Local", "")  # not a global of its module: no process can import it
    with pytest.raises(DefinitionError, match="assign it to a global of module"):
        ExcelAddin("local", local).spec()
