"""The sensor store's contract: a cursor per sensor, replaced whole by each save, on SQLite
and PostgreSQL, also when two daemons save at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from conveyor.storage.instance import Instance


def race(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` for each i < n in threads released at once; their errors."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def one(i: int) -> None:
        try:
            start.wait(timeout=30)
            work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread is stuck"
    return errors


def test_a_sensor_never_saved_has_no_cursor_and_no_time(durable: Instance) -> None:
    assert durable.sensor_store.get("new") == (None, None)


def test_save_replaces_the_cursor_and_time(durable: Instance) -> None:
    store = durable.sensor_store
    store.save("s", "c1", 100.0)
    assert store.get("s") == ("c1", 100.0)
    store.save("s", "c2", 101.5)
    assert store.get("s") == ("c2", 101.5)
    store.save("s", None, 102.0)  # a sensor may clear its cursor
    assert store.get("s") == (None, 102.0)
    store.save("other", "x" * 10_000, 1.0)  # cursors are text of any length
    assert store.get("other") == ("x" * 10_000, 1.0)
    assert store.get("s") == (None, 102.0)


def test_two_daemons_saving_one_new_cursor_at_once_both_succeed(durable: Instance) -> None:
    store = durable.sensor_store
    for round_ in range(20):
        name = f"sensor-{round_}"

        def save(i: int, name: str = name) -> None:
            store.save(name, f"from {i}", float(i))

        assert race(2, save) == []
        cursor, at = store.get(name)
        assert (cursor, at) in {("from 0", 0.0), ("from 1", 1.0)}
