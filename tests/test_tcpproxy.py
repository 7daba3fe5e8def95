"""The test TCP proxy against the real PostgreSQL server, through SQLAlchemy and psycopg."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.tcpproxy import TcpProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.postgres

# Generous: a cut connection fails at once; this only bounds a broken proxy.
FAIL_WITHIN = 5.0


@pytest.fixture
def proxy(pg_server_url: str) -> Iterator[TcpProxy]:
    url = sa.engine.make_url(pg_server_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield proxy


@pytest.fixture
def engine(proxy: TcpProxy, pg_server_url: str) -> Iterator[sa.Engine]:
    """An engine through the proxy, set up as ``conveyor.storage.db`` sets up its own."""
    engine = sa.create_engine(proxy.url_for(pg_server_url), pool_pre_ping=True)
    yield engine
    engine.dispose()


def _one(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT 1")).scalar_one())


def _fails_fast(engine: sa.Engine, sql: str = "SELECT 1") -> float:
    """Seconds ``sql`` took to fail with a connection error."""
    started = time.monotonic()
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(sa.text(sql))
    took = time.monotonic() - started
    assert took < FAIL_WITHIN
    return took


def _connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=FAIL_WITHIN):
        pass


def test_url_for_points_at_the_proxy(proxy: TcpProxy) -> None:
    url = proxy.url_for("postgresql+psycopg://user:secret@db.example:5433/name")
    assert url == f"postgresql+psycopg://user:secret@127.0.0.1:{proxy.port}/name"


def test_queries_and_large_results_pass_through(proxy: TcpProxy, engine: sa.Engine) -> None:
    assert _one(engine) == 1
    with engine.connect() as conn:
        # Larger than the proxy's buffers: both directions must keep flowing.
        big = conn.execute(sa.text("SELECT repeat('x', 3000000)")).scalar_one()
        echoed = conn.execute(sa.text("SELECT length(:s)"), {"s": "y" * 2_000_000}).scalar_one()
    assert big == "x" * 3_000_000
    assert echoed == 2_000_000
    assert proxy.accepted >= 1


def test_cut_fails_fast_and_restore_recovers(proxy: TcpProxy, engine: sa.Engine) -> None:
    assert _one(engine) == 1
    assert proxy.connections() == 1  # the pooled connection

    proxy.cut()
    assert proxy.connections() == 0
    _fails_fast(engine)  # the pooled connection was reset; reconnecting is refused
    _fails_fast(engine)
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy.port)

    proxy.restore()
    assert _one(engine) == 1
    assert _one(engine) == 1


def test_cut_resets_a_query_in_flight(
    proxy: TcpProxy, engine: sa.Engine, pg_server_url: str
) -> None:
    failed: list[BaseException] = []

    def sleeper() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(30) /* proxied sleeper */"))
        except BaseException as e:
            failed.append(e)

    direct = sa.create_engine(pg_server_url)
    thread = threading.Thread(target=sleeper, daemon=True)
    try:
        thread.start()

        def sleeping() -> bool:
            with direct.connect() as conn:
                active = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE query LIKE '%proxied sleeper%' AND state = 'active' "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            return bool(active)

        wait_until(sleeping, 10, "the proxied query to be running")
        cut_at = time.monotonic()
        proxy.cut()
        thread.join(FAIL_WITHIN)
        assert not thread.is_alive(), "the query in flight did not fail after cut()"
        assert time.monotonic() - cut_at < FAIL_WITHIN
        assert len(failed) == 1
        assert isinstance(failed[0], OperationalError)
    finally:
        proxy.restore()
        thread.join(FAIL_WITHIN)
        direct.dispose()


def test_kill_connections_every(proxy: TcpProxy, engine: sa.Engine) -> None:
    proxy.kill_connections_every(0.05)
    took = _fails_fast(engine, "SELECT pg_sleep(3)")
    assert took < 3
    assert proxy.killed >= 1
    assert proxy.connections() == 0

    proxy.kill_connections_every(None)
    assert _one(engine) == 1


def test_close_is_bounded_and_stops_listening(proxy: TcpProxy, engine: sa.Engine) -> None:
    assert _one(engine) == 1
    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < FAIL_WITHIN
    proxy.close()  # closing again does nothing
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy.port)
    with pytest.raises(RuntimeError, match="closed"):
        proxy.cut()
