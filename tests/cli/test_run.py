"""``conveyor run`` and ``conveyor rerun``, as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli


def _runs(cli: Cli) -> list[dict[str, object]]:
    out = cli("runs", "list", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_run_a_file_and_see_it_in_runs_list(cli: Cli, workspace: Path) -> None:
    out = cli("run", str(workspace), "do_stuff")
    assert out.returncode == 0, out.stderr
    assert "✓ add_one" in out.stdout
    assert "success" in out.stdout
    [run] = _runs(cli)
    assert run["job_name"] == "do_stuff"
    assert run["status"] == "success"
    listing = cli("runs", "list")
    assert str(run["id"])[:8] in listing.stdout
    assert "do_stuff" in listing.stdout
    logs = cli("logs", str(run["id"])[:8], "--task", "add_one")
    assert logs.stdout == "adding 5\n"


def test_a_failed_run_exits_1_and_says_where_to_look(cli: Cli, workspace: Path) -> None:
    out = cli("run", str(workspace), "failing", "--tag", "env=dev")
    assert out.returncode == 1
    assert "boom: ValueError: bad value 6" in out.stdout
    assert "conveyor runs show" in out.stdout
    [run] = _runs(cli)
    assert run["status"] == "failure"
    assert run["tags"] == {"team": "a", "env": "dev"}
    show = cli("runs", "show", str(run["id"]))
    assert "skipped" not in show.stdout
    assert "ValueError: bad value 6" in show.stdout
    tb = cli("logs", str(run["id"]), "--task", "boom", "--stderr")
    assert "Traceback" in tb.stdout


def test_config_files_selection_and_module_targets(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "run.yaml").write_text("tasks:\n  scaled:\n    config:\n      n: 3\n")
    out = cli("run", "-m", "pipes", "configured", "--config", "run.yaml")
    assert out.returncode == 0, out.stderr
    run_id = str(_runs(cli)[0]["id"])
    details = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert details["run_config"] == {"tasks": {"scaled": {"config": {"n": 3}}}}
    assert [t["key"] for t in details["tasks"]] == ["return_five", "scaled"]
    (tmp_path / "run.json").write_text('{"tasks": {"scaled": {"config": {"n": 2}}}}')
    selected = cli("run", str(workspace), "configured", "-c", "run.json", "--select", "*scaled")
    assert selected.returncode == 0, selected.stderr


def test_rerun_from_failure(cli: Cli, workspace: Path) -> None:
    assert cli("run", str(workspace), "failing").returncode == 1
    failed_id = str(_runs(cli)[0]["id"])
    workspace.write_text(
        workspace.read_text().replace('raise ValueError(f"bad value {x}")', "return x")
    )
    out = cli("rerun", failed_id[:8])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "reused" in out.stdout
    newest = _runs(cli)[0]
    assert newest["parent_run_id"] == failed_id
    assert newest["status"] == "success"


def test_bad_usage_exits_2_with_one_line(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    cases = [
        (("run", str(workspace)), "defines 3 jobs; name one of"),
        (("run", str(workspace), "nope"), "has no job 'nope'"),
        (("run", "missing.py"), "does not exist"),
        (("run", str(workspace), "do_stuff", "--select", "zzz"), "no task 'zzz'"),
        (("run", str(workspace), "configured", "-c", "nofile.yaml"), "cannot read config"),
        (("run", str(workspace), "do_stuff", "--tag", "novalue"), "key=value"),
        (("runs", "show", "abcdef12"), "no run id starts with"),
        (("runs", "list", "--status", "done"), "'done' is not one of"),
        (("run",), "name a workspace"),
    ]
    (tmp_path / "bad.yaml").write_text("tasks: [1, 2")
    cases.append((("run", str(workspace), "configured", "-c", "bad.yaml"), "is not valid YAML"))
    (tmp_path / "broken.py").write_text("import nonexistent_module_xyz\n")
    cases.append((("run", "broken.py"), "loading broken.py failed: ModuleNotFoundError"))
    for args, fragment in cases:
        out = cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert fragment in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    debug = cli("--debug", "run", "broken.py")
    assert "Traceback" in debug.stderr


def test_help_and_version(cli: Cli) -> None:
    out = cli("--help")
    assert out.returncode == 0
    for name in ("run", "rerun", "runs", "logs", "jobs"):
        assert name in out.stdout
    assert cli("--version").stdout.startswith("conveyor, version")


def test_jobs_list(cli: Cli, workspace: Path) -> None:
    out = cli("jobs", "list", str(workspace), "--json")
    jobs = {j["name"]: j for j in json.loads(out.stdout)}
    assert set(jobs) == {"do_stuff", "failing", "configured"}
    assert jobs["do_stuff"]["tasks"] == 2


def test_a_workspace_file_on_the_multiprocess_executor(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    # The task's Config class lives in the workspace file: workers import it there.
    (tmp_path / "run.yaml").write_text("tasks:\n  scaled:\n    config:\n      n: 4\n")
    out = cli("run", str(workspace), "configured", "-c", "run.yaml", "--executor", "multiprocess")
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = str(_runs(cli)[0]["id"])
    shown = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert [t["status"] for t in shown["tasks"]] == ["success", "success"]
    assert cli("run", str(workspace), "do_stuff", "--executor", "warp").returncode == 2


def test_schedules_list(cli: Cli, tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    out = cli("schedules", "list", str(root / "examples" / "pipelines.py"), "--json", "-n", "2")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["job"] == "etl"
    assert row["cron"] == "0 8 * * 1,5"
    assert row["timezone"] == "Europe/Berlin"
    assert len(row["next"]) == 2
    assert all(t.endswith(("+01:00", "+02:00")) and "T08:00:00" in t for t in row["next"])
    table = cli("schedules", "list", str(root / "examples" / "pipelines.py"))
    assert "at 08:00 on Mon and Fri" in table.stdout
    # a job's interval= shows, and no fire time is listed after its end
    walking = root / "tests" / "scheduler" / "walking.py"
    rows = {
        r["job"]: r for r in json.loads(cli("schedules", "list", str(walking), "--json").stdout)
    }
    assert rows["walk"]["interval"] == {
        "start": "2026-01-01T00:00:00+00:00",
        "end": None,
        "incremental_mode": "interval",
    }
    assert len(rows["walk"]["next"]) == 3
    assert rows["walk_to_an_end"]["next"] == []
    assert (
        "walks its interval from 2026-01-01 00:00 to 2026-01-04 00:00"
        in (rows["walk_to_an_end"]["description"])
    )
    assert rows["daily_regions"]["interval"] is None
    # every: triggers are listed too, on multiples of their period
    hourly = rows["hourly_walk"]
    assert (hourly["trigger"], hourly["cron"]) == ("every:1h", None)
    assert all(t.endswith(":00:00+00:00") for t in hourly["next"])
    assert len(hourly["next"]) == 3


def test_runs_list_pages_with_before(cli: Cli, workspace: Path) -> None:
    for _ in range(3):
        assert cli("run", str(workspace), "do_stuff").returncode == 0
    newest_first = [r["id"] for r in _runs(cli)]
    page = cli("runs", "list", "--limit", "2", "--json")
    first = [r["id"] for r in json.loads(page.stdout)]
    assert first == newest_first[:2]
    nxt = cli("runs", "list", "--limit", "2", "--before", str(first[-1])[:8], "--json")
    assert [r["id"] for r in json.loads(nxt.stdout)] == newest_first[2:]
    bad = cli("runs", "list", "--before", "zzzz")
    assert bad.returncode == 2
    assert "run id 'zzzz'" in bad.stderr
