"""Tasks with ``pool=``: at most the pool's limit of them run at once, across runs and jobs."""

from __future__ import annotations

import threading
from pathlib import Path

from conveyor import Instance, RunStatus
from conveyor.storage.records import TaskRunRecord
from tests.execution.executors import pooled
from tests.waiting import wait_until


def most_at_once(task_runs: list[TaskRunRecord]) -> int:
    """The largest number of these attempts that were running at one moment."""
    edges = []
    for r in task_runs:
        assert r.started_at is not None
        assert r.ended_at is not None
        edges += [(r.started_at.timestamp(), 1), (r.ended_at.timestamp(), -1)]
    running = peak = 0
    for _, change in sorted(edges):  # an end sorts before a start at the same instant
        running += change
        peak = max(peak, running)
    return peak


def queries(instance: Instance, run_id: str) -> list[TaskRunRecord]:
    tasks = instance.run_details(run_id).tasks
    return [a for t in tasks for a in t.attempts if a.task_name == "query"]


def test_a_pool_limits_the_tasks_of_a_run(executor: object, durable: Instance) -> None:
    durable.pool_store.set("db", 1)
    result = pooled.six_queries.run(executor=executor, instance=durable)
    assert result.output("collect") == 15
    attempts = queries(durable, result.run_id)
    assert len(attempts) == 6
    assert most_at_once(attempts) == 1
    assert durable.lease_store.held("pool:db") == []  # every slot was given back
    if executor != "in_process":  # two workers: the second query had to wait
        [wait, *_] = durable.event_store.for_run(result.run_id, kinds=["pool_wait"])
        assert "waits for a slot of pool 'db' (all 1 are held" in wait.message


def test_the_limit_not_the_workers_sets_the_pace(durable: Instance) -> None:
    from conveyor.execution.executors.multiprocess import MultiprocessExecutor

    executor = MultiprocessExecutor(max_workers=3)
    free = pooled.six_queries.run(executor=executor, instance=durable)
    assert most_at_once(queries(durable, free.run_id)) == 3  # no limit: no waiting
    durable.pool_store.set("db", 2)
    limited = pooled.six_queries.run(executor=executor, instance=durable)
    assert most_at_once(queries(durable, limited.run_id)) == 2
    executor.close()


def test_one_limit_across_runs_of_different_jobs(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    instance.pool_store.set("db", 1)
    results = {}

    def run(job: object, name: str) -> None:
        results[name] = job.run(instance=instance)  # type: ignore[attr-defined]

    threads = [
        threading.Thread(target=run, args=(pooled.two_queries, "a")),
        threading.Thread(target=run, args=(pooled.mapped_queries, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {r.status for r in results.values()} == {RunStatus.SUCCESS}
    attempts = queries(instance, results["a"].run_id) + queries(instance, results["b"].run_id)
    assert len(attempts) == 6
    assert most_at_once(attempts) == 1
    instance.close()


def test_a_job_holding_the_pool_runs_its_tasks_of_that_pool(
    executor: object, instance: Instance
) -> None:
    # With a limit of 1, the run's own slot covers its tasks: no deadlock.
    instance.pool_store.set("db", 1)
    result = pooled.pooled_job_with_pooled_tasks.run(executor=executor, instance=instance)
    assert result.output("collect") == 6


def test_a_canceled_run_waiting_for_a_slot_ends_canceled(instance: Instance) -> None:
    instance.pool_store.set("db", 1)
    instance.lease_store.acquire("pool:db", "someone-else", 1)
    done: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: done.update(
            r=pooled.two_queries.run(instance=instance, raise_on_error=False)
        )
    )
    thread.start()

    def waiting_run() -> str | None:
        runs = instance.runs("two_queries", limit=1)
        if runs and instance.event_store.for_run(runs[0].id, kinds=["pool_wait"]):
            return runs[0].id
        return None

    run_id = wait_until(waiting_run, 10, "the run to wait for the pool")
    instance.cancel_run(run_id)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert instance.run(run_id).status is RunStatus.CANCELED
    assert instance.lease_store.held("pool:db") == ["someone-else"]


def test_in_process_other_tasks_run_while_one_waits_for_its_pool(instance: Instance) -> None:
    instance.pool_store.set("db", 1)
    instance.lease_store.acquire("pool:db", "someone-else", 1)
    threading.Timer(0.5, instance.lease_store.release, args=("someone-else",)).start()
    result = pooled.mixed.run(instance=instance)
    assert result.output("collect") == 6
    details = instance.run_details(result.run_id)
    [query_run] = details.task("query").attempts
    for key in ("free", "free_2"):
        [free_run] = details.task(key).attempts
        assert free_run.ended_at is not None
        assert query_run.started_at is not None
        assert free_run.ended_at <= query_run.started_at  # ran while the query waited
