"""Resources that are not ``Resource`` subclasses: plain objects, ``@resource`` functions
and mocks; ``context.resources.<name>``; and objects given to ``run(resources=...)``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest

from conveyor import DefinitionError, Instance, RunContext, TaskContext, job, task, workflow
from conveyor.definitions.resources import resource


class DatabaseConnection:
    def __init__(self) -> None:
        self.closed = False

    def query(self, sql: str) -> list[str]:
        return [f"row of {sql}"]


OPENED: list[DatabaseConnection] = []


@resource
def database_resource() -> DatabaseConnection:
    conn = DatabaseConnection()
    OPENED.append(conn)
    return conn


@resource
def session_resource() -> Iterator[str]:
    OPENED.append(DatabaseConnection())
    yield "session"
    OPENED[-1].closed = True


@task
def query_database(context: TaskContext) -> list[str]:
    return context.resources.database.query("SELECT * FROM users")  # type: ignore[no-any-return]


@workflow(resources={"database": database_resource})
def database_job() -> None:
    query_database()


def test_context_resources_by_attribute_with_a_resource_function(instance: Instance) -> None:
    OPENED.clear()
    result = database_job.run(instance=instance)
    assert result.output("query_database") == ["row of SELECT * FROM users"]
    assert len(OPENED) == 1  # called once per run, when first read


def test_a_generator_resource_is_closed_after_the_run(instance: Instance) -> None:
    OPENED.clear()

    @task
    def use(session: str, context: TaskContext) -> str:
        assert context.resources["session"] == session
        return session

    @workflow(resources={"session": session_resource})
    def wf() -> None:
        use()

    assert wf.run(instance=instance).output("use") == "session"
    assert [c.closed for c in OPENED] == [True]


def test_an_unread_resource_is_never_opened(instance: Instance) -> None:
    OPENED.clear()

    @task
    def nothing() -> int:
        return 1

    @workflow(resources={"database": database_resource})
    def wf() -> None:
        nothing()

    assert wf.run(instance=instance).output("nothing") == 1
    assert OPENED == []


def test_a_plain_function_and_object_are_passed_as_they_are(instance: Instance) -> None:
    def notify(text: str) -> str:
        return f"sent {text}"

    settings = {"region": "eu"}

    @task
    def use(notify: Any, context: TaskContext) -> str:
        assert context.resources.settings is settings
        return str(notify("hi"))

    @workflow(resources={"notify": notify, "settings": settings})
    def wf() -> None:
        use()

    assert wf.run(instance=instance).output("use") == "sent hi"


def test_a_magicmock_reaches_the_task_as_the_same_object(instance: Instance) -> None:
    seen: list[Any] = []

    @task
    def ping(server: Any, context: TaskContext) -> None:
        seen.extend([server, context.resources.server])
        server.ping_server()

    @workflow(resources={"server": object()})
    def wf() -> None:
        ping()

    mock = MagicMock()
    wf.run(resources={"server": mock}, instance=instance)
    assert seen == [mock, mock]
    assert seen[0] is mock
    assert seen[1] is mock
    mock.ping_server.assert_called_once_with()
    assert wf.resources["server"] is not mock  # the job itself keeps its resource


def test_run_resources_on_a_job_body(instance: Instance) -> None:
    mock = MagicMock()

    @job(resources={"db": None})
    def body(db: Any, context: RunContext) -> None:
        assert context.resources.db is db
        db.load(1)

    body.run(resources={"db": mock}, instance=instance)
    mock.load.assert_called_once_with(1)


def test_an_unknown_resource_name_says_which_there_are(instance: Instance) -> None:
    @task
    def use(context: TaskContext) -> None:
        context.resources.wharehouse  # noqa: B018

    @workflow(resources={"warehouse": 1})
    def wf() -> None:
        use()

    with pytest.raises(AttributeError, match=r"no resource 'wharehouse'.*\(resources: warehouse\)"):
        wf.run(instance=instance)


def test_bad_resources_are_clear_errors(instance: Instance) -> None:
    with pytest.raises(DefinitionError, match="@resource 'needs': takes no parameters"):

        @resource  # type: ignore[arg-type]
        def needs(init_context: Any) -> None: ...

    with pytest.raises(DefinitionError, match="expected a dict of resources by key"):
        database_job.run(resources=[1], instance=instance)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="resource key '1x' must be a Python identifier"):
        database_job.run(resources={"1x": 1}, instance=instance)


def test_an_unpicklable_resource_on_a_process_executor_is_refused_clearly(
    instance: Instance,
) -> None:
    @workflow(resources={"server": threading.Lock()})
    def wf() -> None:
        ping_server()

    result = wf.run(executor="multiprocess", instance=instance, raise_on_error=False)
    assert not result.success
    assert "could not be sent to a worker process" in str(result.error)
    assert "pickle" in str(result.error)


@task
def ping_server(server: Any) -> None:
    server.ping_server()


def test_the_resource_map_pickles_as_a_plain_map_by_attribute() -> None:
    import pickle

    from conveyor.definitions.resources import ResourceMap
    from conveyor.execution.resources import opened

    with opened({"a": 1, "b": database_resource}, {"a"}) as ready:
        copy = pickle.loads(pickle.dumps(ready))
    assert isinstance(copy, ResourceMap)
    assert copy.a == 1
    assert "b" not in copy  # never read, so never opened
