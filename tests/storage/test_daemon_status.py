"""Daemon health rows: one per daemon, upserted by each beat, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.storage.instance import Instance


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_beats_count_passes_and_keep_the_last_error(durable: Instance) -> None:
    store = durable.daemon_status
    assert store.all() == []

    def beat(seconds: float, error: str | None, at: float, passes: int = 1) -> None:
        store.beat(
            "d1", host="box", pid=41, started_at=10.0, pass_seconds=seconds, error=error,
            passes=passes, at=at,
        )  # fmt: skip

    beat(0.01, None, at=11.0)
    [first] = store.all()
    assert (first.daemon_id, first.host, first.pid, first.passes) == ("d1", "box", 41, 1)
    assert (first.started_at, first.last_pass_at) == (at(10.0), at(11.0))
    assert (first.last_error, first.last_error_at) == (None, None)

    beat(0.5, "launching: OSError: boom", at=12.0)
    beat(0.02, None, at=13.0, passes=8)
    [d1] = store.all()
    assert d1.passes == 10
    assert d1.last_pass_seconds == 0.02
    assert d1.last_pass_at == at(13.0)
    # a pass without an error keeps the last one, and when it was
    assert (d1.last_error, d1.last_error_at) == ("launching: OSError: boom", at(12.0))
    assert d1.to_dict()["last_error_at"] == at(12.0).isoformat()

    store.beat("d2", host="other", pid=7, started_at=20.0, pass_seconds=0.1, error=None, at=21.0)
    assert [d.daemon_id for d in store.all()] == ["d2", "d1"]  # most recently heard first
    assert store.forget("d1")
    assert not store.forget("d1")
    assert [d.daemon_id for d in store.all()] == ["d2"]
