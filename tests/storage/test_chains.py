"""Where chains start: recorded once, with the newest run end, whoever records it first."""

from __future__ import annotations

from conveyor import Instance, RunStatus
from conveyor.storage.chains import ChainStore


def _end(instance: Instance) -> None:
    run = instance.run_store.create(job_name="up", job_version="v", then=RunStatus.RUNNING)
    instance.run_store.set_status(run.id, RunStatus.SUCCESS)


def test_a_chain_starts_at_the_newest_end_when_first_seen_and_stays_there(
    durable: Instance,
) -> None:
    store = ChainStore(durable.db)
    assert store.first_seen("file:/a.py", [], 1.0) == {}
    assert store.first_seen("file:/a.py", [("down", "job.success:up")], 1.0) == {
        ("down", "job.success:up"): 0
    }
    _end(durable)
    _end(durable)
    newest = durable.run_store.last_end_id()
    # seen again (a restart, another daemon): the point stays; a new chain starts now
    seen = store.first_seen("file:/a.py", [("down", "job.success:up"), ("down", "retry")], 2.0)
    assert seen == {("down", "job.success:up"): 0, ("down", "retry"): newest}
    # the same chain in another workspace is another chain
    other = ChainStore(durable.db).first_seen("file:/b.py", [("down", "job.success:up")], 3.0)
    assert other == {("down", "job.success:up"): newest}
    # a workspace's path may be longer than a key column
    long = "file:/" + "x" * 2000 + ".py"
    assert store.first_seen(long, [("down", "job.success:up")], 4.0) == {
        ("down", "job.success:up"): newest
    }
