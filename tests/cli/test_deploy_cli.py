"""``conveyor deploy`` and ``conveyor versions``, run as real commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.conftest import Cli

JOBS = """
from conveyor import task, workflow

@task
def say():
    print("running {text}")
    return "{text}"

@workflow
def hello():
    say()

@workflow(trigger=hello.success)
def report():
    say()
"""


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipelines.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_deploy_then_redeploy_then_change(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", JOBS.format(text="one"))
    first = cli("deploy", str(path), "--env", "dev", "-m", "first cut")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "version 1 (new) active in dev: 2 jobs added"
    again = cli("deploy", str(path), "--env", "dev")
    assert again.stdout.strip() == "no change: version 1 is active in dev already"
    _write(tmp_path / "ws", JOBS.format(text="two"))
    changed = cli("deploy", str(path))  # --env dev by default
    assert changed.stdout.strip() == "version 2 (new) active in dev: 2 jobs changed"
    pre = cli("deploy", str(path), "--env", "pre")
    assert pre.stdout.strip() == "version 2 (deployed before) active in pre"

    table = cli("versions")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "HASH", "WHEN", "WHO", "MESSAGE", "JOBS", "ACTIVE", "IN"]
    assert lines[1].split()[0] == "2"
    assert lines[1].rstrip().endswith("dev, pre")
    assert "first cut" in lines[2]
    assert lines[2].rstrip().endswith("-")

    rows = json.loads(cli("versions", "--env", "pre", "--json").stdout)
    assert [r["number"] for r in rows] == [2]
    assert rows[0]["active_in"] == ["dev", "pre"]
    assert rows[0]["jobs"] == ["hello", "report"]
    assert rows[0]["diff"] == {"added": [], "changed": ["hello", "report"], "removed": []}
    assert len(rows[0]["hash"]) == 64


def test_a_folder_is_deployed_from_the_current_folder_by_default(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path / "ws", JOBS.format(text="one"))
    done = cli("deploy", "-m", "from here", cwd=tmp_path / "ws")
    assert done.returncode == 0, done.stderr
    rows = json.loads(cli("versions", "--json").stdout)
    assert rows[0]["entry"] == "."
    assert rows[0]["message"] == "from here"


def test_bad_input_is_refused_with_the_fix(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", JOBS.format(text="one"))
    bad_env = cli("deploy", str(path), "--env", "staging")
    assert bad_env.returncode == 2
    assert "error: no environment 'staging': the environments are dev, pre, prod" in (
        bad_env.stderr
    )
    missing = cli("deploy", str(tmp_path / "nope.py"))
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    reqs = cli("deploy", str(path), "--requirements", str(tmp_path / "none.txt"))
    assert reqs.returncode == 2
    assert "--requirements" in reqs.stderr
    broken = _write(tmp_path / "broken", "import not_a_module_anywhere\n")
    failed = cli("deploy", str(broken))
    assert failed.returncode == 2
    assert "fails to load, so nothing was stored" in failed.stderr
    assert "ModuleNotFoundError" in failed.stderr
    bad_list = cli("versions", "--env", "nowhere")
    assert bad_list.returncode == 2
    assert "no environment 'nowhere'" in bad_list.stderr
    assert cli("versions").stdout.strip().startswith("no version deployed yet")


def test_a_deployed_version_runs_after_its_folder_is_deleted(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "ws", JOBS.format(text="deployed"))
    assert cli("deploy", str(path), "--env", "prod").returncode == 0
    shutil.rmtree(tmp_path / "ws")
    shutil.rmtree(tmp_path / "home" / "cache")  # as on another machine
    script = tmp_path / "check.py"
    script.write_text(
        "import conveyor\n"
        "from conveyor.execution.environments import environment_workspace\n"
        "inst = conveyor.Instance.from_env()\n"
        "job = environment_workspace(inst, 'prod').job('prod.hello')\n"
        "print(job.run(instance=inst).output('say'))\n"
        "print([v.number for v in conveyor.versions('prod')])\n"
    )
    env = {"CONVEYOR_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["deployed", "[1]"]
