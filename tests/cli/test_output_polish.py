"""What the command prints reads right: rows are not cut in a pipe, counts agree with
their nouns and with what runs, a new home starts quietly, and a wrong argument is
named for what it is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor.definitions.cron_text import describe
from conveyor.definitions.schedule import Schedule
from tests.waiting import wait_until

CONVEYOR = [sys.executable, "-m", "conveyor.cli"]
UPSTREAM = "an_upstream_workflow_whose_name_is_long"


def _env(tmp_path: Path) -> dict[str, str]:
    """A terminal-less environment (a pipe) with no COLUMNS: as in ``conveyor ... | grep``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.pop("COLUMNS", None)
    return {**env, "CONVEYOR_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}


def _conveyor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVEYOR, *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.py"
    path.write_text(
        textwrap.dedent(f"""
        from conveyor import task, workflow

        @task
        def extract():
            return [1, 2]

        @task
        def count(rows):
            return len(rows)

        @task
        def total(rows):
            return sum(rows)

        @task
        def report(n, t):
            return f"{{n}} rows, {{t}} in all"

        @workflow
        def four():
            rows = extract()
            report(count(rows), total(rows))

        @workflow(tags={{"owner": "a-team-with-a-rather-long-name", "area": "reporting"}})
        def {UPSTREAM}():
            extract()
        """)
    )
    return path


def test_runs_list_into_a_pipe_is_not_cut_at_80_columns(tmp_path: Path, jobs: Path) -> None:
    ran = _conveyor(tmp_path, "run", str(jobs), UPSTREAM)
    assert ran.returncode == 0, ran.stderr
    listed = _conveyor(tmp_path, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    [_header, row] = listed.stdout.strip().splitlines()
    assert UPSTREAM in row
    assert "owner=a-team-with-a-rather-long-name area=reporting" in row
    assert "…" not in listed.stdout


def test_the_running_line_counts_the_selected_tasks_with_the_right_noun(
    tmp_path: Path, jobs: Path
) -> None:
    all_four = _conveyor(tmp_path, "run", str(jobs), "four")
    assert all_four.stdout.splitlines()[0] == "four: running 4 tasks"
    two = _conveyor(tmp_path, "run", str(jobs), "four", "--select", "extract", "-s", "count")
    assert two.returncode == 0, two.stderr
    assert two.stdout.splitlines()[0] == "four: running 2 tasks"
    one = _conveyor(tmp_path, "run", str(jobs), UPSTREAM)
    assert one.stdout.splitlines()[0] == f"{UPSTREAM}: running 1 task"
    # a rerun runs its parent's selection again
    run_id = two.stdout.splitlines()[-1].split()[1]
    again = _conveyor(tmp_path, "rerun", run_id, "--full")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "four: running 2 tasks"


def test_a_daemon_on_a_new_home_starts_quietly_and_counts_one_job(tmp_path: Path) -> None:
    one = tmp_path / "one.py"
    one.write_text("from conveyor import job\n\n@job\ndef alone():\n    pass\n")
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [*CONVEYOR, "daemon", str(one)],
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until(lambda: "daemon watching" in log.read_text(), 90, "the daemon to start")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    lines = log.read_text().splitlines()
    assert lines[0] == f"conveyor daemon: 1 job from {one}; Ctrl-C stops it"
    assert lines[1].endswith(" INFO daemon watching 1 job")
    assert not [line for line in lines if "alembic" in line.lower() or "upgrade" in line]


def test_a_folder_is_a_workspace_and_an_empty_one_is_called_empty(
    tmp_path: Path, jobs: Path
) -> None:
    done = _conveyor(tmp_path, "run", str(tmp_path), "four")
    assert done.returncode == 0, done.stderr
    (tmp_path / "empty").mkdir()
    empty = _conveyor(tmp_path, "jobs", "list", "empty")
    assert empty.returncode == 2
    assert "'empty' is a folder with no Python file in it" in empty.stderr
    assert "does not exist" not in empty.stderr


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_a_pool_limit_below_one_is_refused_for_what_it_is(tmp_path: Path, limit: str) -> None:
    done = _conveyor(tmp_path, "pools", "set", "db", limit)
    assert done.returncode == 2
    assert (
        f"Invalid value for 'LIMIT': {limit}: a pool's limit is a whole number >= 1" in done.stderr
    )
    assert "`conveyor pools delete db` removes the limit instead" in done.stderr
    assert "No such option" not in done.stderr
    listed = _conveyor(tmp_path, "pools", "list")
    assert listed.stdout.startswith("no pools")


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (Schedule(every_minute=1), "every minute (UTC)"),
        (Schedule(every_hour=1), "at minute 0 every hour (UTC)"),
        (Schedule(every_month=1, at_hours=[3]), "at 03:00 (UTC)"),
        (Schedule(at_minutes=[15]), "at minute 15 every hour (UTC)"),
    ],
)
def test_schedules_in_words_say_one_as_one(schedule: Schedule, words: str) -> None:
    assert str(schedule) == words


def test_cron_steps_of_one_read_as_every_unit() -> None:
    assert describe("*/1 * * * *") == "every minute"
    assert describe("0 0 */1 * *") == describe("0 0 * * *") == "at 00:00"
    assert describe("0 0 1 */1 *") == "at 00:00 on day 1"
    assert describe("0 0 1 */2 *") == "at 00:00 on day 1 every 2 months"
    assert str(Schedule(every_minute=5)) == "every 5 minutes (UTC)"


def test_reprs_count_in_the_right_number() -> None:
    from conveyor import task, workflow

    @task
    def only() -> int:
        return 1

    @workflow
    def single() -> None:
        only()

    assert repr(single) == "<Job single (workflow, 1 task)>"
    assert repr(single.graph) == "<Graph 1 task>"
