from __future__ import annotations

import pytest

from conveyor import (
    Config,
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    Job,
    task,
    workflow,
)


@task
def source() -> int:
    return 1


@task
def double(x: int) -> int:
    return 2 * x


@task
def combine(items: list[int], extra: dict[str, int]) -> int:
    return sum(items) + sum(extra.values())


@task
def side_effect() -> None: ...


def test_the_body_runs_once_at_definition_and_builds_a_graph() -> None:
    calls = []

    @workflow
    def etl() -> None:
        calls.append(1)
        double(source())

    assert calls == [1]
    assert isinstance(etl, Job)
    assert etl.kind == "workflow"
    assert etl.graph is not None
    assert list(etl.graph.nodes) == ["source", "double"]
    assert etl.graph.upstream("double") == ("source",)
    assert repr(etl) == "<Job etl (workflow, 2 tasks)>"


def test_repeated_calls_get_numbered_keys_and_aliases_rename() -> None:
    @workflow
    def wf() -> None:
        a = source()
        b = source()
        c = source().alias("third")
        double(a)
        double(b)
        double(c)

    assert wf.graph is not None
    assert list(wf.graph.nodes) == ["source", "source_2", "third", "double", "double_2", "double_3"]
    assert wf.graph.upstream("double_3") == ("third",)


def test_handles_nested_in_lists_and_dicts_are_dependencies() -> None:
    @workflow
    def wf() -> None:
        a, b = source(), source()
        combine([a, double(b)], {"k": source()})

    assert wf.graph is not None
    assert set(wf.graph.upstream("combine")) == {"source", "double", "source_3"}


def test_order_without_data() -> None:
    @workflow
    def wf() -> None:
        first = side_effect()
        second = side_effect()
        third = side_effect()
        first >> second >> third
        [first, second] >> side_effect()

    assert wf.graph is not None
    assert wf.graph.upstream("side_effect_2") == ("side_effect",)
    assert wf.graph.upstream("side_effect_3") == ("side_effect_2",)
    assert set(wf.graph.upstream("side_effect_4")) == {"side_effect", "side_effect_2"}


def test_an_alias_that_clashes_is_a_duplicate_task_error() -> None:
    with pytest.raises(DuplicateTaskError, match="alias 'source' is already the key"):

        @workflow
        def wf() -> None:
            source()
            source().alias("source")


def test_a_cycle_is_found_and_named() -> None:
    with pytest.raises(CycleError, match="cycle") as err:

        @workflow
        def wf() -> None:
            a = side_effect()
            b = side_effect()
            a >> b
            b >> a

    assert "side_effect -> side_effect_2 -> side_effect" in str(err.value) or (
        "side_effect_2 -> side_effect -> side_effect_2" in str(err.value)
    )


def test_an_exception_in_the_body_propagates_unchanged() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):

        @workflow
        def wf() -> None:
            source()
            raise Boom()


def test_a_parameter_with_no_upstream_no_config_no_resource_is_an_error() -> None:
    @task
    def needs(x: int, y: int) -> int:
        return x + y

    with pytest.raises(DefinitionError, match="parameter 'y' has no upstream, no config") as err:

        @workflow
        def wf() -> None:
            needs(source())

    assert "(key 'needs')" in str(err.value)


def test_config_context_resources_and_defaults_need_no_upstream() -> None:
    class Cfg(Config):
        n: int = 1

    @task
    def ok(x: int, cfg: Cfg, context, db, flag: bool = False) -> int:  # type: ignore[no-untyped-def]
        return x

    @workflow(resources={"db": object()})
    def wf() -> None:
        ok(source())

    assert wf.graph is not None
    assert "ok" in wf.graph


@pytest.mark.parametrize(
    "body",
    [
        lambda: list(source()),  # iterate
        lambda: bool(source()),
        lambda: double.submit(source()),
        lambda: double.map([1, 2]),
        lambda: double(1, 2, 3),
    ],
)
def test_misuse_inside_a_workflow_is_a_clear_error(body) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError):
        workflow(name="misuse")(body)


def test_empty_workflows_and_workflow_parameters_are_rejected() -> None:
    with pytest.raises(DefinitionError, match="calls no task"):

        @workflow
        def empty() -> None:
            pass

    with pytest.raises(DefinitionError, match="inputs are named parameters"):

        @workflow
        def params(*x):  # type: ignore[no-untyped-def]
            source()


def test_indexing_a_handle_passes_an_item() -> None:
    @task
    def pair() -> tuple[int, int]:
        return (3, 4)

    @workflow
    def wf() -> None:
        p = pair()
        double(p[1])

    assert wf.run().output("double") == 8


def test_key_counter_skips_taken_keys() -> None:
    from conveyor.definitions.workflow import KeyCounter

    keys = KeyCounter()
    taken = {"t_3"}
    got = [keys.next("t", taken) for _ in range(4)]
    assert got == ["t", "t_2", "t_4", "t_5"]
