"""The pool store's contract: one limit per pool, validated, listed by name, on SQLite and
PostgreSQL, also when two `set`s race."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.instance import Instance
from tests.storage.test_sensors import race


def test_an_unknown_pool_has_no_limit(durable: Instance) -> None:
    assert durable.pool_store.get("nope") is None
    assert durable.pool_store.all() == {}


def test_set_get_replace_and_list_by_name(durable: Instance) -> None:
    store = durable.pool_store
    store.set("warehouse", 3)
    store.set("api", 1)
    assert store.get("warehouse") == 3
    store.set("warehouse", 5)
    assert store.get("warehouse") == 5
    assert list(store.all().items()) == [("api", 1), ("warehouse", 5)]


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "3", None])
def test_a_limit_must_be_a_whole_number_of_at_least_one(durable: Instance, limit: object) -> None:
    with pytest.raises(ConfigError, match=r"pool 'p': the limit .* must be a whole number >= 1"):
        durable.pool_store.set("p", limit)  # type: ignore[arg-type]
    assert durable.pool_store.get("p") is None


@pytest.mark.parametrize("name", ["", None, 3])
def test_a_pool_needs_a_name(durable: Instance, name: object) -> None:
    with pytest.raises(ConfigError, match="give a non-empty name"):
        durable.pool_store.set(name, 1)  # type: ignore[arg-type]


def test_delete(durable: Instance) -> None:
    store = durable.pool_store
    store.set("p", 2)
    store.delete("p")
    assert store.get("p") is None
    with pytest.raises(NotFoundError, match=r"no pool 'p'; list them with `conveyor pools list`"):
        store.delete("p")


def test_racing_sets_of_one_new_pool_both_succeed(durable: Instance) -> None:
    store = durable.pool_store
    for round_ in range(20):
        name = f"pool-{round_}"

        def set_limit(i: int, name: str = name) -> None:
            store.set(name, i + 1)

        assert race(2, set_limit) == []
        assert store.get(name) in (1, 2)
    assert len(store.all()) == 20


def test_pool_holders_are_the_runs_holding_its_slots_now(durable: Instance) -> None:
    from conveyor.storage.states import RunStatus

    def running() -> str:
        return durable.run_store.create(job_name="etl", job_version="v1", then=RunStatus.RUNNING).id

    a, b, c = running(), running(), running()
    leases = durable.lease_store
    assert durable.pool_holders("warehouse") == []
    assert leases.acquire("pool:warehouse", a, 3)
    # a task of run b holds a slot as "<run>/<task>"; its run counts once
    assert leases.acquire("pool:warehouse", f"{b}/load", 3)
    assert leases.acquire("pool:warehouse", f"{b}/save", 3)
    assert leases.acquire("pool:other", c, 3)
    assert leases.acquire("job:etl", c, 3)
    assert durable.pool_holders("warehouse") == [a, b]
    assert durable.pool_holders("other") == [c]
    # an ended run's slot is free, whether or not it was given back yet
    durable.run_store.set_status(a, RunStatus.SUCCESS)
    assert durable.pool_holders("warehouse") == [b]
    leases.release(b)
    assert durable.pool_holders("warehouse") == []
