"""The SQL database behind an instance: engine set-up, transactions, migrations.

SQLite runs in WAL mode with a busy timeout, and write transactions begin
with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
can fail at once with "database is locked" when another process committed in
between, whatever the timeout. Taking the write lock up front makes writers
queue on the busy timeout instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from conveyor.errors import ConfigError, StorageError
from conveyor.storage.schema import metadata

# The newest migration's revision. A test checks that it matches Alembic's
# head, so start-up can skip importing Alembic when the schema is current.
HEAD_REVISION = "0012"
SQLITE_BUSY_TIMEOUT_S = 60.0


class Database:
    """An engine plus the transaction helpers the stores use."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        url = check_database_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_memory = self.is_sqlite and (url in ("sqlite://", "sqlite:///:memory:"))
        # One in-memory connection is shared by every thread; serialise its use.
        self._memory_lock = threading.RLock() if self.is_memory else None
        self.engine = self._create_engine(url, echo)

    def _create_engine(self, url: str, echo: bool) -> Engine:
        if self.is_memory:
            engine = create_engine(
                "sqlite://",
                connect_args={"check_same_thread": False},
                poolclass=StaticPool,
                echo=echo,
            )
        elif self.is_sqlite:
            engine = create_engine(
                url,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
                echo=echo,
            )
        else:
            engine = create_engine(
                url, pool_pre_ping=True, echo=echo, connect_args=_pg_timeouts(url)
            )
        if self.is_sqlite:
            file_backed = not self.is_memory

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Let SQLAlchemy's "begin" event below emit BEGIN itself.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                if file_backed:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                immediate = conn.get_execution_options().get("conveyor_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed on success."""
        with self._locked(), self.engine.connect() as conn:
            conn = conn.execution_options(conveyor_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction."""
        with self._locked(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._memory_lock is None:
            yield
        else:
            with self._memory_lock:
                yield

    def migrate(self) -> None:
        """Bring the schema to the newest revision, creating it on a new database.

        Safe when several processes start at once: the migration runs under
        the database's write lock (SQLite) or an advisory lock (PostgreSQL).
        """
        if self.is_memory:
            with self.write() as conn:
                metadata.create_all(conn)
            return
        try:
            if self._current_revision() == HEAD_REVISION:
                return
            with self.write() as conn:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(74616301)"))
                if _revision(conn) != HEAD_REVISION:
                    with _quiet_alembic():
                        from conveyor.storage.migrate import upgrade

                        upgrade(conn)
        except OperationalError as e:
            raise StorageError(f"cannot open the database {self.safe_url}: {e.orig}") from e

    def check_schema(self) -> None:
        """``StorageError`` unless the schema is at the newest revision: a database made
        by an older Conveyor (or none at all) must be upgraded first."""
        if self.is_memory:
            with self.write() as conn:
                metadata.create_all(conn)
            return
        try:
            current = self._current_revision()
        except OperationalError as e:
            raise StorageError(f"cannot open the database {self.safe_url}: {e.orig}") from e
        if current != HEAD_REVISION:
            have = f"schema {current}" if current else "no Conveyor schema"
            raise StorageError(
                f"the database {self.safe_url} has {have}, and this Conveyor needs schema "
                f"{HEAD_REVISION}: run `conveyor db upgrade` (with the same "
                f"CONVEYOR_DATABASE_URL), then start again"
            )

    def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: no Conveyor schema yet)."""
        return self._current_revision()

    def _current_revision(self) -> str | None:
        with self.read() as conn:
            return _revision(conn)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


# Conveyor ships one PostgreSQL driver, psycopg 3: these schemes all mean it. "postgres" is
# what Heroku, Render and most tools print; SQLAlchemy knows neither it nor, without a
# driver named, that "postgresql" should not mean psycopg2.
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg"})
SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite"})
URL_FORMS = (
    "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (postgres:// and postgresql+psycopg:// "
    "work too) or sqlite:////ABSOLUTE/PATH.db"
)


def check_database_url(value: str, name: str = "database_url") -> str:
    """``value`` as the URL an engine is made from: a PostgreSQL URL of any accepted scheme
    is given psycopg 3's; an SQLite URL is kept as it is.

    Raises:
        ConfigError: ``value`` is not an SQLite or PostgreSQL URL. The message names
            ``name`` (where the value came from, e.g. ``CONVEYOR_DATABASE_URL``), what is
            wrong, and the forms accepted.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} is empty; write {URL_FORMS}")
    try:
        url = make_url(value.strip())
    except ArgumentError:
        raise ConfigError(
            f"{name}={_masked(value)!r} is not a database URL; write {URL_FORMS}"
        ) from None
    scheme = url.drivername.lower()
    if scheme in SQLITE_SCHEMES:
        return value.strip()
    if scheme in POSTGRES_SCHEMES:
        if scheme == "postgresql+psycopg":
            return value.strip()
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    backend, _, driver = scheme.partition("+")
    shown = url.render_as_string(hide_password=True)
    if backend in ("postgres", "postgresql"):
        raise ConfigError(
            f"{name}={shown!r}: Conveyor reaches PostgreSQL through psycopg 3, not {driver}; "
            f"write {URL_FORMS.split(' or ')[0]}"
        )
    raise ConfigError(
        f"{name}={shown!r}: Conveyor keeps its records in PostgreSQL or SQLite, not "
        f"{backend}; write {URL_FORMS}"
    )


def _masked(text: str) -> str:
    """``text`` with what looks like a password (``:secret@``) hidden."""
    import re

    return re.sub(r"(?<=:)[^:/@]+(?=@)", "***", text)


# A server that stops answering (a partition drops packets; it does not refuse them)
# must fail a call within seconds, not the kernel's minutes: heartbeats and the judge
# of dead runs count on it. A URL's own parameters win.
PG_TIMEOUTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def _pg_timeouts(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    given = make_url(url).query
    return {k: v for k, v in PG_TIMEOUTS.items() if k not in given}


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic logs each plugin and migration at INFO: thirteen lines on a new home under a
    program that logs at INFO (the daemon). Its warnings and errors still show, and a
    level set on its logger on purpose is kept."""
    logger = logging.getLogger("alembic")
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


def _revision(conn: Connection) -> str | None:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or answered too late
    (worth trying again), rather than that the request itself was wrong."""
    from sqlalchemy.exc import DBAPIError, InterfaceError

    if isinstance(error, OperationalError | InterfaceError):
        # SQLite says "no such table" with the same class as "database is locked".
        text = str(error.orig).lower()
        return not any(w in text for w in ("no such", "syntax error", "has no column"))
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and is_transient(cause)
