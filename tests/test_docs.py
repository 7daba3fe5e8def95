"""Every example in README.md and docs/ runs here, as written.

Each Python block is a whole script: it runs on its own, as ``python
file.py`` in a fresh folder with a fresh ``CONVEYOR_HOME``, as a reader who
copies it would run it (no ``if __name__ == "__main__":`` guard, nothing
from the blocks before it).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest

from conveyor import Instance, Schedule
from tests.waiting import wait_until

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
HEADING = re.compile(r"^#+ (.*)$", re.M)
EXAMPLE_TIMEOUT = 90


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(path.read_text()) if kind == lang]


def python_examples() -> list[pytest.ParameterSet]:
    """Every Python block of the docs, named by its file and section."""
    examples = []
    for doc in DOCS:
        text = doc.read_text()
        seen: dict[str, int] = {}
        for match in BLOCK.finditer(text):
            if match.group(1) != "python":
                continue
            headings = HEADING.findall(text, 0, match.start())
            heading = headings[-1] if headings else "top"
            section = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
            seen[section] = seen.get(section, 0) + 1
            name = section if seen[section] == 1 else f"{section}-{seen[section]}"
            examples.append(pytest.param(match.group(2), id=f"{doc.name}:{name}"))
    return examples


def test_the_readme_and_the_guide_show_python_examples() -> None:
    names = [str(p.id) for p in python_examples()]
    assert any(n.startswith("README.md:") for n in names)
    assert any(n.startswith("guide.md:executors") for n in names)


@pytest.mark.parametrize("source", python_examples())
def test_python_example_runs_as_a_script(source: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(source)
    env = _env(tmp_path)
    try:
        out = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        output = b"".join(x for x in (e.stdout, e.stderr) if isinstance(x, bytes))
        printed = output.decode(errors="replace")
        pytest.fail(f"the example ran past {EXAMPLE_TIMEOUT}s:\n{source}\n{printed}")
    assert out.returncode == 0, f"{source}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    home = Path(env["CONVEYOR_HOME"])
    if (home / "conveyor.db").exists():
        # Nothing is left for a daemon that the reader has no reason to start.
        instance = Instance.at(home)
        try:
            waiting = [r for r in instance.runs(limit=1000) if not r.status.is_terminal]
        finally:
            instance.close()
        assert waiting == [], "the example leaves runs that nothing will start"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    return env


def conveyor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``conveyor`` command from the project root."""
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs_json(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    """``conveyor runs list --json`` with ``args``, parsed."""
    out = conveyor("runs", "list", *args, "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_quickstart_is_two_commands_and_the_first_serves_the_examples(tmp_path: Path) -> None:
    section = ROOT.joinpath("README.md").read_text().split("## Quickstart", 1)[1]
    match = BLOCK.search(section)
    assert match is not None, "the Quickstart holds a code block"
    first_block = match.group(2)
    commands = [
        line.split("#")[0].strip()
        for line in first_block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert commands == ["make run", "make test"]
    if shutil.which("make") is None:
        pytest.fail("make is needed for the Quickstart")
    env = _env(tmp_path)
    # `make run` serves the examples until Ctrl-C; PORT=0 keeps it off the port 3000 that
    # a developer's own `make run` may hold.
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "-s", "run", "PORT=0"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def url() -> str | None:
            # make ending first is a failure too, shown with its output
            assert proc.poll() is None, log.read_text()
            found = re.search(r"conveyor dev: (http://\S+)", log.read_text())
            return found.group(1) if found else None

        base = wait_until(url, 300, "conveyor dev to print its URL", every=0.2)
        assert httpx.get(f"{base}/", timeout=30).status_code == 200
        workspace = httpx.get(f"{base}/api/workspace", timeout=30).json()
        assert workspace["error"] is None
        assert {"etl", "fan_out", "digest", "flaky", "regional_report", "load_landed"} <= set(
            workspace["jobs"]
        )
        assert workspace["sensors"] == ["landed_files"]
        # the daemon beside the server runs what the UI launches: the flaky task's retry too
        launched = httpx.post(f"{base}/api/runs", json={"job_name": "flaky"}, timeout=30)
        assert launched.status_code == 201, launched.text
        run_id = launched.json()["id"]

        def ended() -> str | None:
            status = str(httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()["status"])
            return status if status in ("success", "failure", "canceled") else None

        assert wait_until(ended, 120, "the flaky run to end", every=0.2) == "success"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert "conveyor dev: stopped by Ctrl-C: the server, the file watcher and the daemon" in output


def test_readme_command_line_tour(tmp_path: Path) -> None:
    tour = [b for b in blocks(ROOT / "README.md", "bash") if "conveyor run" in b]
    assert len(tour) == 1
    env = _env(tmp_path)
    run_id = None
    for line in tour[0].splitlines():
        command = line.split("#")[0].strip()
        if not command:
            continue
        if run_id is not None:
            command = command.replace("<run id>", run_id[:8])
        args = command.split()
        assert args[0] == "conveyor"
        out = conveyor(*args[1:], env=env)
        assert out.returncode == 0, (command, out.stdout, out.stderr)
        if run_id is None:
            run_id = str(runs_json(env)[0]["id"])
        if args[1] == "logs":
            assert "spread:" in out.stdout


def _commands() -> dict[str, click.Command]:
    """Every command of ``conveyor`` by its words: ``run``, ``runs list``..."""
    from conveyor.cli.main import cli

    ctx = click.Context(cli)
    found: dict[str, click.Command] = {}
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                found[f"{name} {sub}"] = command.commands[sub]
        else:
            found[name] = command
    return found


def test_the_cli_synopsis_lists_every_command_with_its_options() -> None:
    [synopsis] = [
        b for b in blocks(ROOT / "docs" / "guide.md", "text") if b.startswith("conveyor run ")
    ]
    commands = _commands()
    listed: list[str] = []
    for line in synopsis.splitlines():
        words = line.split()
        assert words[0] == "conveyor", line
        name = " ".join(words[1:3]) if " ".join(words[1:3]) in commands else words[1]
        assert name in commands, f"the synopsis lists a command that does not exist: {line}"
        listed.append(name)
        tokens = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", line))
        options = [p for p in commands[name].params if isinstance(p, click.Option)]
        names = {o for p in options for o in (*p.opts, *p.secondary_opts)}
        assert tokens <= names, (line, sorted(tokens - names))
        for option in options:
            assert tokens & {*option.opts, *option.secondary_opts}, (line, option.opts)
    assert sorted(listed) == sorted(commands), "the synopsis lists each command once"


def test_the_guide_lists_the_schedule_fields() -> None:
    section = ROOT.joinpath("docs", "guide.md").read_text().split("## Schedules", 1)[1]
    section = section.split("\n## ", 1)[0]
    fields = list(inspect.signature(Schedule).parameters)
    assert fields, "Schedule takes fields"
    for field in fields:
        assert f"| `{field}` |" in section, field


def test_the_documented_dask_setup_runs_on_loopback(tmp_path: Path, pg_server_url: str) -> None:
    """The guide's multi-machine block, with every machine on this one."""
    import socket

    [block] = [b for b in blocks(ROOT / "docs" / "guide.md", "bash") if "dask scheduler" in b]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = [
        line.replace("scheduler-host", "127.0.0.1")
        .replace("8786", str(port))
        .replace("postgresql+psycopg://conveyor@db-host:5432/conveyor", pg_server_url)
        for line in block.splitlines()
        if line.strip()
    ]
    scheduler, worker, *rest = lines
    assert scheduler.startswith("dask scheduler")
    assert worker.startswith("dask worker")
    bin_dir = Path(sys.executable).parent
    env = _env(tmp_path)
    # the worker machine has the project's code where the launching machine has it
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    procs = [
        subprocess.Popen(
            [str(bin_dir / "dask"), *cmd.split()[1:], "--dashboard-address", ":0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for cmd in (scheduler, worker.replace('"', ""))
    ]
    try:
        from distributed import Client

        def joined() -> Client | None:
            try:
                client = Client(f"tcp://127.0.0.1:{port}", timeout=2)
            except OSError:
                return None  # the scheduler is not listening yet
            if client.scheduler_info()["workers"]:
                return client
            client.close()
            return None

        client = wait_until(joined, 60, "the worker to join the scheduler", every=0.5)
        [info] = client.scheduler_info()["workers"].values()
        assert info["resources"] == {"cpu": 2.0, "memory": 8e9}
        client.close()
        for line in rest:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                env[name] = value
                continue
            args = line.split()
            out = conveyor(*args[1:], env=env)
            assert out.returncode == 0, out.stdout + out.stderr
        # the test database is shared with other tests: look at the newest etl run
        [run] = runs_json(env, "--job", "etl", "-n", "1")
        assert run["status"] == "success"
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
