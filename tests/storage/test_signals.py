"""The signal store's contract: a signal waits once per (job, kind) until it is taken, on
SQLite and PostgreSQL, also when it is sent twice at once."""

from __future__ import annotations

from conveyor.storage.instance import Instance
from tests.storage.test_sensors import race


def test_a_signal_waits_until_it_is_taken_once(durable: Instance) -> None:
    store = durable.signal_store
    assert store.pending("refresh") == []
    assert not store.take("a", "refresh")
    store.send(["b", "a"], "refresh")
    assert store.pending("refresh") == ["a", "b"]  # sorted by job name
    assert store.take("a", "refresh")
    assert not store.take("a", "refresh")
    assert store.pending("refresh") == ["b"]


def test_sending_twice_is_one_signal(durable: Instance) -> None:
    store = durable.signal_store
    store.send(["a", "a"], "refresh")
    store.send(["a"], "refresh")
    store.send(iter(["a", "b"]), "refresh")  # any iterable of names
    assert store.pending("refresh") == ["a", "b"]
    assert store.take("a", "refresh")
    assert not store.take("a", "refresh")


def test_kinds_are_apart_and_sending_nothing_is_nothing(durable: Instance) -> None:
    store = durable.signal_store
    store.send([], "refresh")
    store.send(["a"], "other")
    assert store.pending("refresh") == []
    assert not store.take("a", "refresh")
    assert store.pending("other") == ["a"]


def test_racing_sends_leave_one_signal(durable: Instance) -> None:
    store = durable.signal_store
    assert race(4, lambda i: store.send(["x", f"only-{i}", "y"], "refresh")) == []
    assert store.pending("refresh") == ["only-0", "only-1", "only-2", "only-3", "x", "y"]
    assert store.take("x", "refresh")
    assert not store.take("x", "refresh")
