"""The first start of ``conveyor daemon`` on a home with old runs fires no chained run for
them (issue 10, finding 4 and acceptance 4)."""

from __future__ import annotations

import signal
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor import Instance, RunStatus
from tests.commands import CONVEYOR, conveyor, home_env
from tests.waiting import wait_until

PIPES = """
    from conveyor import job, task, workflow

    @task
    def extract():
        return [1, 2, 3]

    @task
    def load(rows):
        return len(rows)

    @workflow
    def etl():
        load(extract())

    @job(trigger=etl.success, execute={"concurrency": None})
    def report():
        return "reported"
"""

# Another file of the same home, with a job of the same name defined otherwise.
OTHER = """
    from conveyor import job, task, workflow

    @task
    def fetch():
        return 1

    @workflow
    def etl():
        fetch()

    @job(trigger=etl.success, execute={"concurrency": None})
    def summary():
        return "summed"
"""


@contextmanager
def _daemon(env: dict[str, str], workspace: Path, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [*CONVEYOR, "daemon", str(workspace)], env=env, stdout=out, stderr=out
        )
    try:
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _passed(env: dict[str, str], instance: Instance, workspace: Path, job: str) -> None:
    """Wait until the daemon has made a pass: it started a run queued by hand (chains come
    before launching in a pass)."""
    run_id = conveyor(env, "trigger", str(workspace), job).stdout.strip()
    wait_until(
        lambda: instance.run(run_id).status is RunStatus.SUCCESS, 60, f"a manual run of {job}"
    )


def _run(env: dict[str, str], workspace: Path, *args: str) -> None:
    done = conveyor(env, "run", str(workspace), *args)
    assert done.returncode == 0, done.stderr


def test_a_first_daemon_on_a_home_with_old_runs_chains_none_of_them(tmp_path: Path) -> None:
    pipes = tmp_path / "pipes.py"
    pipes.write_text(textwrap.dedent(PIPES))
    other = tmp_path / "other.py"
    other.write_text(textwrap.dedent(OTHER))
    home = tmp_path / "home"
    env = home_env(home)
    instance = Instance.at(home)
    try:
        # A daemon of the other file ran once on this home, and stopped.
        with _daemon(env, other, tmp_path / "other-daemon.log"):
            _passed(env, instance, other, "summary")
        # The history: runs of etl from this file, whole and partial, and from the other.
        _run(env, pipes, "etl")
        _run(env, pipes, "etl")
        _run(env, pipes, "etl", "--select", "extract")
        _run(env, other, "etl")
        old = {r.id for r in instance.runs("etl", limit=100)}
        assert len(old) == 4
        log = tmp_path / "daemon.log"
        with _daemon(env, pipes, log):
            _passed(env, instance, pipes, "report")
            chained = [r for r in instance.runs("report", limit=100) if "upstream_run" in r.tags]
            assert chained == [], log.read_text()
            # A run that ends now fires its chain, once.
            _run(env, pipes, "etl")
            [new] = {r.id for r in instance.runs("etl", limit=100)} - old

            def reported() -> list[str]:
                return [
                    r.tags["upstream_run"]
                    for r in instance.runs("report", limit=100)
                    if "upstream_run" in r.tags and r.status is RunStatus.SUCCESS
                ]

            assert wait_until(reported, 60, "the chained report") == [new]
            _passed(env, instance, pipes, "report")  # and nothing more, passes later
            assert reported() == [new]
    finally:
        instance.close()
