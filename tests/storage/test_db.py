"""The database URL an instance accepts, and what opening a new database says."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.storage.db import check_database_url
from conveyor.storage.instance import Instance


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://app:pw@db:5432/app", "postgresql+psycopg://app:pw@db:5432/app"),
        (
            "postgresql://app@db/app?sslmode=require",
            "postgresql+psycopg://app@db/app?sslmode=require",
        ),
        ("postgresql+psycopg://app@db/app", "postgresql+psycopg://app@db/app"),
        ("POSTGRES://app@db/app", "postgresql+psycopg://app@db/app"),
        ("sqlite:////var/conveyor/conveyor.db", "sqlite:////var/conveyor/conveyor.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_postgres_urls_of_every_common_form_use_psycopg(given: str, used: str) -> None:
    assert check_database_url(given, "CONVEYOR_DATABASE_URL") == used


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("not a url", "X='not a url' is not a database URL; write postgresql://USER:PASSWORD@"),
        ("mysql://app:secret@db/app", "X='mysql://app:***@db/app': Conveyor keeps its records"),
        ("postgres//app:secret@db/app", "X='postgres//app:***@db/app' is not a database URL"),
        ("postgresql+asyncpg://db/app", "through psycopg 3, not asyncpg; write postgresql://"),
        ("  ", "X is empty; write postgresql://"),
    ],
)
def test_other_urls_are_refused_naming_where_they_came_from(given: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_database_url(given, "X")
    assert says in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_new_database_is_made_without_alembics_info_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As under the daemon, which logs at INFO: its migrations used to print 13 lines."""
    caplog.set_level(logging.INFO)
    inst = Instance.at(tmp_path / "home")
    inst.close()
    assert (tmp_path / "home" / "conveyor.db").exists()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    # the logger is left as it was found: its own level, not Conveyor's
    assert logging.getLogger("alembic").level == logging.NOTSET
