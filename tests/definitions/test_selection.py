from __future__ import annotations

import pytest

from conveyor import SelectionError, task, workflow
from conveyor.definitions.selection import select


@task
def t(*args: object) -> None: ...


# a -> b -> c -> d, and a -> e
@workflow
def chain() -> None:
    a = t().alias("a")
    b = t(a).alias("b")
    c = t(b).alias("c")
    t(c).alias("d")
    t(a).alias("e")


@pytest.mark.parametrize(
    ("expr", "keys"),
    [
        ("c", {"c"}),
        ("*c", {"a", "b", "c"}),
        ("+c", {"b", "c"}),
        ("++c", {"a", "b", "c"}),
        ("b+", {"b", "c"}),
        ("b++", {"b", "c", "d"}),
        ("b*", {"b", "c", "d"}),
        ("a+", {"a", "b", "e"}),
        ("*c+", {"a", "b", "c", "d"}),
        (["c", "e"], {"c", "e"}),
        ("c, e", {"c", "e"}),
    ],
)
def test_selection_syntax(expr: str | list[str], keys: set[str]) -> None:
    assert chain.graph is not None
    assert select(chain.graph, expr) == keys


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("zz", "no task 'zz'"),
        ("*bb", "did you mean 'b'"),
        ("", "empty selection"),
        ("a+*", "invalid selection"),
        ("**a", "invalid selection"),
        ("a b!", "invalid selection"),
    ],
)
def test_bad_selections(expr: str, fragment: str) -> None:
    assert chain.graph is not None
    with pytest.raises(SelectionError, match=fragment):
        select(chain.graph, expr)
