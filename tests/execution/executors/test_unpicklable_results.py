"""A task whose output cannot be pickled fails, the same way on every executor.

Its result could be neither stored (for ``.result()`` and reruns) nor sent
between processes, so the attempt fails with an error that names the task,
the type and the fix, rather than the run ending ``success`` without it.
"""

from __future__ import annotations

import re

import pytest

from conveyor import ExecutionError, Instance, RunStatus, TaskStatus
from tests.execution.executors import unpicklable

MESSAGE = (
    r"task 'make_lock' returned a _thread\.lock, which cannot be pickled \(TypeError: .*\), "
    r"so its result cannot be stored or passed on: return a value that pickles"
)


@pytest.mark.parametrize("written_as", ["graph", "body"])
def test_an_unpicklable_output_fails_its_task(
    executor: object, written_as: str, instance: Instance
) -> None:
    job = getattr(unpicklable, f"lock_{written_as}")
    result = job.run(executor=executor, instance=instance, raise_on_error=False)
    assert result.status is RunStatus.FAILURE
    assert result.task_status("make_lock") is TaskStatus.FAILURE
    error = result.failures["make_lock"]
    assert type(error) is ExecutionError
    assert re.search(MESSAGE, str(error)), error
    [attempt] = [r for r in result.task_runs if r.task_key == "make_lock"]
    assert attempt.error_message is not None
    assert "return None" in attempt.error_message
    assert "use" not in result.task_keys or result.task_status("use") is not TaskStatus.SUCCESS
