from __future__ import annotations

import asyncio

import pytest

from conveyor import ConfigError, DefinitionError, RetryPolicy, Task, job, task


def test_bare_and_configured_decorators() -> None:
    @task
    def plain(x: int) -> int:
        """Doubles."""
        return x * 2

    @task(name="renamed", cpu=2, memory="512Mi", timeout="10m", tags=["etl"], retry=RetryPolicy(2))
    def configured() -> None: ...

    assert isinstance(plain, Task)
    assert plain.name == "plain"
    assert plain.description == "Doubles."
    assert configured.name == "renamed"
    assert configured.cpu == 2.0
    assert configured.memory == 512 * 1024**2
    assert configured.timeout == 600
    assert configured.tags == {"etl": ""}
    assert configured.retry is not None
    assert configured.retry.max_retries == 2
    assert repr(plain) == "<Task plain>"


def test_a_task_called_outside_a_run_is_a_plain_call() -> None:
    @task
    def add(x: int, y: int = 1) -> int:
        return x + y

    assert add(2) == 3
    assert add(2, y=5) == 7
    assert add.submit(1).result() == 2
    assert [f.result() for f in add.map([1, 2, 3])] == [2, 3, 4]


def test_async_task_outside_a_run_returns_the_coroutine() -> None:
    @task
    async def fetch() -> int:
        return 4

    assert fetch.is_async
    assert asyncio.run(fetch()) == 4


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"cpu": 0}, "cpu=0"),
        ({"cpu": -1}, "cpu=-1"),
        ({"cpu": "two"}, "cpu='two'"),
        ({"memory": "lots"}, "invalid memory 'lots'"),
        ({"memory": 0}, "invalid memory"),
        ({"timeout": "soon"}, "invalid timeout 'soon'"),
        ({"timeout": 0}, "more than 0"),
        ({"tags": "etl"}, "tags must be"),
        ({"retry": 3}, "RetryPolicy"),
        ({"on_success": 5}, "hooks must be callables"),
        ({"name": "not valid"}, "identifier"),
    ],
)
def test_bad_task_options(options: dict[str, object], fragment: str) -> None:
    def body() -> None: ...

    with pytest.raises((ConfigError, DefinitionError)) as err:
        task(**options)(body)  # type: ignore[call-overload]
    assert fragment in str(err.value)
    assert "@task" in str(err.value)


def test_two_config_parameters_are_rejected() -> None:
    from conveyor import Config

    class A(Config):
        a: int = 1

    class B(Config):
        b: int = 1

    with pytest.raises(DefinitionError, match="2 Config parameters"):

        @task
        def two(a: A, b: B) -> None: ...


@pytest.mark.parametrize("bad", ["", " db", 3])
def test_a_bad_pool_name_is_a_definition_error(bad: object) -> None:
    def load() -> None: ...

    with pytest.raises(DefinitionError, match=r"must be a pool's name, e\.g\. pool='warehouse'"):
        task(pool=bad)(load)  # type: ignore[call-overload]
    with pytest.raises(DefinitionError, match=r"must be a pool's name, e\.g\. pool='warehouse'"):
        job(pool=bad)(load)
