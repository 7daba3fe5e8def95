"""A deployed job's config: the `.conveyor/` config files travel with the code (not its
secrets), each environment reads its own profile, and keys use the job's name in the code."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from conveyor import Instance
from conveyor.execution.deploy import deploy
from conveyor.execution.environments import environment_workspace
from conveyor.execution.packaging import package

JOBS = """
from conveyor import Config, job


class Feed(Config):
    url: str
    batch: int = 1


@job
def etl(config: Feed) -> str:
    return f"{config.url} x{config.batch}"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".conveyor").mkdir(parents=True)
    (ws / "pipes.py").write_text(textwrap.dedent(JOBS))
    (ws / ".conveyor" / "config.toml").write_text('[jobs.pipes.etl]\nurl = "base"\n')
    (ws / ".conveyor" / "prod.config.toml").write_text('[jobs.pipes.etl]\nurl = "prod-feed"\n')
    (ws / ".conveyor" / "secrets.toml").write_text('[jobs]\npassword = "hunter2"\n')
    (ws / ".conveyor" / "conveyor.db").write_bytes(b"not code")
    return ws


def test_config_files_travel_and_secrets_do_not(folder: Path) -> None:
    made = package(folder)
    with tarfile.open(fileobj=io.BytesIO(made.data)) as tar:
        names = sorted(tar.getnames())
    assert ".conveyor/config.toml" in names
    assert ".conveyor/prod.config.toml" in names
    assert not [n for n in names if "secrets" in n or n.endswith(".db")]


def test_each_environment_reads_its_profile(folder: Path, tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    deploy(instance, folder, "dev")
    deploy(instance, folder, "prod")
    dev = environment_workspace(instance, "dev").job("dev.etl")
    prod = environment_workspace(instance, "prod").job("prod.etl")
    assert (dev.environment, dev.base_name) == ("dev", "etl")
    # Keys name the job as its code does (jobs.pipes.etl), not dev.etl.
    assert dev.run(instance=instance).outputs == {"dev.etl": "base x1"}
    assert prod.run(instance=instance).outputs == {"prod.etl": "prod-feed x1"}
    given = {"config": {"batch": 3}}
    assert prod.run(given, instance=instance).outputs == {"prod.etl": "prod-feed x3"}
    instance.close()
