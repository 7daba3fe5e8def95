"""Datatailr's per-call options: ``t(...).set_resources(...)`` and ``.update_env_vars({...})``
in a ``@workflow`` body override the task's own options for that call only."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Instance, task, workflow
from conveyor.errors import ConfigError, DefinitionError, InsufficientResourcesError
from conveyor.execution.executors.multiprocess import MultiprocessExecutor


@task(cpu=1, memory="256m", env_vars={"MODE": "base"})
def crunch(n: int) -> int:
    return n * 2


@workflow
def sized() -> None:
    small = crunch(1)
    big = crunch(2).set_resources(cpu=2, memory="1g").update_env_vars({"MODE": "big"})
    crunch(3).set_resources({"memory": "512m"}) >> small
    crunch(4).alias("four").update_env_vars({"EXTRA": 7})
    _ = big


def node_task(key: str) -> Any:
    assert sized.graph is not None
    return sized.graph.nodes[key].task


def test_a_call_gets_its_own_resources_and_env() -> None:
    assert (node_task("crunch").cpu, node_task("crunch").memory) == (1.0, 256 * 10**6)
    big = node_task("crunch_2")
    assert (big.cpu, big.memory, big.env_vars) == (2.0, 10**9, {"MODE": "big"})
    third = node_task("crunch_3")
    assert (third.cpu, third.memory) == (1.0, 512 * 10**6)
    assert node_task("four").env_vars == {"MODE": "base", "EXTRA": "7"}
    # the task itself is unchanged: the options belong to one call
    assert (crunch.cpu, crunch.memory, crunch.env_vars) == (1.0, 256 * 10**6, {"MODE": "base"})
    assert crunch(5) == 10


def test_set_resources_takes_an_object_with_cpu_and_memory() -> None:
    class Resources:
        cpu = 0.5
        memory = "128m"

    @workflow
    def wf() -> None:
        crunch(1).set_resources(Resources(), cpu=3)

    assert wf.graph is not None
    t = wf.graph.nodes["crunch"].task
    assert (t.cpu, t.memory) == (3.0, 128 * 10**6)


def test_the_run_uses_the_calls_resources(instance: Instance) -> None:
    @workflow
    def too_big() -> None:
        crunch(1).set_resources(cpu=64)

    with pytest.raises(InsufficientResourcesError, match="'crunch' asks for cpu=64"):
        too_big.run(executor=MultiprocessExecutor(max_workers=1), instance=instance)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.set_resources(cpu=0), "cpu=0 must be a number of cores > 0"),
        (lambda h: h.set_resources(cpu="two"), "cpu='two' must be a number of cores"),
        (lambda h: h.set_resources(memory="lots"), "crunch.set_resources()"),
        (lambda h: h.set_resources(), "give cpu=... and/or memory=..."),
        (lambda h: h.set_resources({"gpu": 1}), "unknown resource 'gpu'"),
        (lambda h: h.set_resources(42), "must have cpu and memory"),
        (lambda h: h.update_env_vars(["A=1"]), "must be a dict of names to values"),
        (lambda h: h.update_env_vars({"A=B": "1"}), "without '=' or NUL"),
        (lambda h: h.update_env_vars({"A": None}), "a value must be a string, a number"),
        (lambda h: h.update_env_vars({"A": [1]}), "convert it to a string first"),
    ],
)
def test_bad_call_options_are_refused(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="@workflow 'bad'") as info:

        @workflow
        def bad() -> None:
            call(crunch(1))

    assert message in str(info.value)


def test_options_on_an_item_of_the_output_are_refused() -> None:
    with pytest.raises(DefinitionError, match="belong to the call"):

        @workflow
        def bad() -> None:
            crunch(1)[0].set_resources(cpu=2)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("A=1", "env_vars='A=1' must be a dict"),
        ({"": "x"}, "name '' must be a non-empty string"),
        ({"A": object()}, "a value must be a string, a number or a boolean"),
    ],
)
def test_bad_task_env_vars_are_refused(env: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="@task 'f'") as info:

        @task(env_vars=env)
        def f() -> None: ...

    assert message in str(info.value)
