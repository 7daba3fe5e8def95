"""A ``TaskHandle`` used as a value in a ``@workflow`` body is a clear error.

The body runs once, at definition time, to compose task calls; a handle
stands for an output that does not exist yet. Comparing, testing,
computing with or iterating it says so, and points at a task or a ``@job``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor import DefinitionError, task, workflow


@task
def count() -> int:
    return 3


@task
def show(n: Any) -> str:
    return str(n)


USES: dict[str, Callable[[Any], object]] = {
    "compared with >": lambda h: h > 0,
    "compared with <=": lambda h: h <= 0,
    "compared with ==": lambda h: h == 0,
    "compared with !=": lambda h: h != 0,
    "tested with if/while/and/or/not": lambda h: 1 if h else 0,
    "used in arithmetic": lambda h: h + 1,
    "used in arithmetic ": lambda h: 2 * h,
    "used in arithmetic  ": lambda h: -h,
    "unpacked or iterated": lambda h: [*h],
    "searched with 'in'": lambda h: 1 in h,
    "measured with len()": len,
    "converted with int()": int,
    "formatted into a string": lambda h: f"rows: {h}",
}


@pytest.mark.parametrize("use", list(USES))
def test_using_a_handle_as_a_value_says_what_a_workflow_body_does(use: str) -> None:
    def body() -> None:
        USES[use](count())

    body.__name__ = "counting"
    with pytest.raises(DefinitionError) as caught:
        workflow(body)
    message = str(caught.value)
    assert f"cannot be {use.strip()}" in message
    assert "<TaskHandle count> stands for the output of task 'count'" in message
    assert "a @workflow body runs once, when it is defined, to compose task calls" in message
    assert "use @job, whose body runs at run time with real values" in message


def test_if_handle_greater_than_zero_is_not_a_raw_type_error() -> None:
    with pytest.raises(DefinitionError, match=r"cannot be compared with >\. Pass the handle"):

        @workflow
        def branching() -> None:
            n = count()
            if n > 0:
                show(n)


def test_handles_still_compose() -> None:
    @workflow
    def composed() -> None:
        n = count()
        same = [n, n]
        assert n in same  # identity: a handle equals itself
        other = count()
        assert n != other
        assert len({n, n}) == 1  # hashable
        show(count()) >> show(n)

    assert composed.run().output("show_2") == "3"
