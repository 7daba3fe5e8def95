from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.execution.executors.dask import DaskExecutor
from conveyor.execution.executors.multiprocess import MultiprocessExecutor


@pytest.fixture(scope="session")
def dask_executor() -> Iterator[DaskExecutor]:
    """One two-worker LocalCluster for the session (starting one takes seconds)."""
    executor = DaskExecutor(n_workers=2, threads_per_worker=2)
    yield executor
    executor.close()


@pytest.fixture(params=["in_process", "multiprocess", "dask"])
def executor(request: pytest.FixtureRequest) -> object:
    if request.param == "in_process":
        return "in_process"
    if request.param == "multiprocess":
        return MultiprocessExecutor(max_workers=2)
    return request.getfixturevalue("dask_executor")
