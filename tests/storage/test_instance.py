from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.storage.instance import Instance


def test_from_env_uses_conveyor_home(home: Path) -> None:
    inst = Instance.from_env()
    assert inst.home == home.resolve()
    assert (home / "conveyor.db").exists()
    inst.close()


def test_default_is_ephemeral_without_env_and_durable_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Instance.default()
    assert first.home is None
    assert first is Instance.default()
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "h"))
    durable = Instance.default()
    assert durable.home == (tmp_path / "h").resolve()
    first.close()


def test_database_url_from_env(
    pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", pg_server_url)
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "h"))
    inst = Instance.from_env()
    assert inst.db.url == pg_server_url
    assert not inst.db.is_sqlite
    assert "postgresql" in repr(inst)
    inst.close()
