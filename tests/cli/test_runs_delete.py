"""``conveyor runs delete``, ``conveyor rerun --config`` and what they refuse, as typed."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import textwrap
from pathlib import Path

from tests.cli.conftest import CONVEYOR, Cli


def _runs(cli: Cli) -> list[dict[str, object]]:
    out = cli("runs", "list", "--json", "--limit", "100")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _run_id(cli: Cli, *args: str) -> str:
    out = cli("run", *args)
    assert out.returncode in (0, 1), out.stderr
    return str(_runs(cli)[0]["id"])


def test_runs_delete_by_id_needs_yes_without_a_terminal(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    first = _run_id(cli, str(workspace), "do_stuff")
    second = _run_id(cli, str(workspace), "do_stuff")
    asked = cli("runs", "delete", first[:8])
    assert asked.returncode == 2
    assert "this would delete 1 run; pass --yes" in asked.stderr
    assert len(_runs(cli)) == 2

    done = cli("runs", "delete", first[:8], "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 1 run (")
    assert [r["id"] for r in _runs(cli)] == [second]
    gone = cli("runs", "show", first)
    assert gone.returncode == 2
    assert cli("logs", first, "--task", "add_one").returncode == 2
    assert not (tmp_path / "home" / "logs" / first).exists()


def test_runs_delete_by_job_and_date_leaves_runs_that_have_not_ended(
    cli: Cli, workspace: Path
) -> None:
    done_stuff = _run_id(cli, str(workspace), "do_stuff")
    failed = _run_id(cli, str(workspace), "failing")
    queued = cli("trigger", str(workspace), "do_stuff")
    assert queued.returncode == 0, queued.stderr
    queued_id = next(str(r["id"]) for r in _runs(cli) if r["status"] == "queued")

    by_job = cli("runs", "delete", "--job", "failing", "--yes")
    assert by_job.returncode == 0, by_job.stderr
    assert "deleted 1 run" in by_job.stdout
    assert {r["id"] for r in _runs(cli)} == {done_stuff, queued_id}
    assert failed not in by_job.stdout

    nothing = cli("runs", "delete", "--before", "2000-01-01", "--yes")
    assert nothing.returncode == 0
    assert nothing.stdout.strip() == ("no ended runs created before 2000-01-01: nothing to delete")
    everything = cli("runs", "delete", "--before", "2999-01-01", "--yes")
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.startswith("deleted 1 run (")
    assert "; 1 run that has not ended is left" in everything.stdout
    assert [r["id"] for r in _runs(cli)] == [queued_id]

    refused = cli("runs", "delete", queued_id[:8], "--yes")
    assert refused.returncode == 2
    assert f"cannot delete runs that have not ended: {queued_id[:8]} (queued)" in refused.stderr
    assert "conveyor runs cancel RUN" in refused.stderr


def test_runs_delete_says_what_it_needs(cli: Cli) -> None:
    bare = cli("runs", "delete")
    assert bare.returncode == 2
    assert "name the runs to delete: RUN ids, --job JOB, or --before DATE" in bare.stderr
    both = cli("runs", "delete", "abc", "--job", "x")
    assert both.returncode == 2
    assert "not both" in both.stderr
    bad_date = cli("runs", "delete", "--before", "yesterday", "--yes")
    assert bad_date.returncode == 2
    assert "--before 'yesterday' is not an ISO date" in bad_date.stderr


def test_runs_delete_asks_in_a_terminal(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    run_id = _run_id(cli, str(workspace), "do_stuff")
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home")}
    for answer, left in (("n\n", 1), ("y\n", 0)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [*CONVEYOR, "runs", "delete", run_id[:8]],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.close(follower)
        os.write(leader, answer.encode())
        out, err = proc.communicate(timeout=60)
        os.close(leader)
        assert "delete 1 run, with their logs and results? [y/N]" in out
        assert len(_runs(cli)) == left, (out, err)


def test_rerun_takes_new_config_and_refuses_a_successful_run(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "three.yaml").write_text("tasks:\n  scaled:\n    config:\n      n: 3\n")
    (tmp_path / "four.json").write_text('{"tasks": {"scaled": {"config": {"n": 4}}}}')
    first = _run_id(cli, str(workspace), "configured", "-c", "three.yaml")

    same = cli("rerun", first[:8])
    assert same.returncode == 2
    assert "succeeded, so there is nothing to rerun from failure" in same.stderr
    assert f"conveyor rerun {first[:8]} --full" in same.stderr
    assert "running" not in same.stdout  # refused before it started
    assert len(_runs(cli)) == 1

    again = cli("rerun", first[:8], "--config", "four.json")
    assert again.returncode == 0, again.stderr
    latest = str(_runs(cli)[0]["id"])
    details = json.loads(cli("runs", "show", latest, "--json").stdout)
    assert details["run_config"] == {"tasks": {"scaled": {"config": {"n": 4}}}}
    assert {t["key"]: t["status"] for t in details["tasks"]} == {
        "return_five": "reused",
        "scaled": "success",
    }
    full = cli("rerun", first[:8], "--full")
    assert full.returncode == 0, full.stderr


def test_a_partitioned_job_without_partition_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "regions.py"
    path.write_text(
        textwrap.dedent("""
        from conveyor import StaticPartitions, job

        @job(partitions=StaticPartitions(["us", "eu"]))
        def regional(context):
            return context.partition
        """)
    )
    out = cli("run", str(path), "regional")
    assert out.returncode == 2
    assert "job 'regional' is partitioned" in out.stderr
    assert "--partition us" in out.stderr
    assert cli("run", str(path), "regional", "--partition", "eu").returncode == 0
