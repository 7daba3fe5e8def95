from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor import NotFoundError, WorkspaceError
from conveyor.workspace import load, load_file, load_folder, load_module


def _write(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


JOBS = """
from conveyor import task, workflow, job

@task
def t():
    return 1

@workflow
def first():
    t()

@job
def second():
    return t()

alias = first  # the same job under another name is still one job

from conveyor import sensor

@sensor(job=second, interval="1m")
def watcher():
    return True
"""


def test_every_job_among_the_globals_is_loaded(tmp_path: Path) -> None:
    ws = load_file(_write(tmp_path / "ws_one.py", JOBS))
    assert sorted(ws.jobs) == ["first", "second"]
    assert list(ws.sensors) == ["watcher"]
    assert ws.sensors["watcher"].job_name == "second"
    assert ws.job("second").kind == "job"
    assert ws.places["first"].endswith("ws_one.py:first")
    with pytest.raises(WorkspaceError, match="defines 2 jobs; name one of: first, second"):
        ws.job(None)
    with pytest.raises(NotFoundError, match="has no job 'third'"):
        ws.job("third")


def test_two_jobs_with_one_name_name_both_places(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ws_dup.py",
        """
        from conveyor import task, workflow

        @task
        def t():
            return 1

        @workflow(name="etl")
        def a():
            t()

        @workflow(name="etl")
        def b():
            t()
    """,
    )
    with pytest.raises(WorkspaceError) as err:
        load_file(path)
    assert "ws_dup.py:a" in str(err.value)
    assert "ws_dup.py:b" in str(err.value)


def test_modules_sibling_imports_and_origins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "helpers_x.py", "VALUE = 41\n")
    _write(
        tmp_path / "ws_mod.py",
        """
        from conveyor import task, workflow
        from helpers_x import VALUE

        @task
        def t():
            return VALUE + 1

        @workflow
        def only():
            t()
    """,
    )
    ws = load_file(tmp_path / "ws_mod.py")
    assert ws.job(None).run().output("t") == 42
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = load_module("ws_mod")
    assert by_module.origin == {"module": "ws_mod"}
    assert list(load(by_module.origin).jobs) == ["only"]
    with pytest.raises(WorkspaceError, match="no module named 'no_such_mod'"):
        load_module("no_such_mod")
    with pytest.raises(WorkspaceError, match="does not exist"):
        load_file(tmp_path / "nope.py")
    with pytest.raises(WorkspaceError, match="not a Python"):
        load_file(_write(tmp_path / "x.txt", ""))


UPSTREAM = """
from conveyor import task, workflow

@task
def make():
    return 1

@workflow
def upstream():
    make()
"""

DOWNSTREAM = """
from conveyor import job
from fo_up import upstream  # a job of another file of the folder, for its chain

@job(trigger=[upstream.success])
def downstream():
    return 2
"""


def test_a_folder_is_one_workspace_of_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    _write(folder / "fo_up.py", UPSTREAM)
    _write(folder / "fo_down.py", DOWNSTREAM)
    _write(folder / "_fo_helper.py", "raise RuntimeError('underscore files are not loaded')\n")
    (folder / "sub").mkdir()
    _write(folder / "sub" / "fo_deep.py", "raise RuntimeError('subfolders are not loaded')\n")
    ws = load_folder(folder)
    assert sorted(ws.jobs) == ["downstream", "upstream"]
    assert ws.origin == {"folder": str(folder.resolve())}
    assert ws.describe() == str(folder.resolve())
    # the imported job counts in the file that defines it, once
    assert ws.places["upstream"] == f"{folder.resolve() / 'fo_up.py'}:upstream"
    assert ws.places["downstream"].endswith("fo_down.py:downstream")
    again = load({**ws.origin, "job": "upstream"})
    assert sorted(again.jobs) == ["downstream", "upstream"]
    assert again.job("upstream").run().success


def test_a_folder_run_is_of_its_workspace_for_chains(tmp_path: Path) -> None:
    from conveyor.scheduler.chains import places, run_places

    folder = tmp_path / "chained"
    folder.mkdir()
    _write(folder / "fo_up.py", UPSTREAM)
    ws = load_folder(folder)
    recorded = run_places({**ws.origin, "job": "upstream"})
    assert recorded & places(ws, ws.job("upstream"))
    other = tmp_path / "other"
    other.mkdir()
    assert not run_places({"folder": str(other), "job": "upstream"}) & places(
        ws, ws.job("upstream")
    )


def test_two_files_of_a_folder_with_one_job_name_name_both_files(tmp_path: Path) -> None:
    folder = tmp_path / "dup"
    folder.mkdir()
    _write(folder / "fo_one.py", UPSTREAM)
    _write(folder / "fo_two.py", UPSTREAM)
    with pytest.raises(WorkspaceError) as err:
        load_folder(folder)
    assert "two jobs are named 'upstream'" in str(err.value)
    assert "fo_one.py:upstream" in str(err.value)
    assert "fo_two.py:upstream" in str(err.value)


def test_folder_errors_say_what_is_wrong(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _write(empty / "_private.py", "")
    with pytest.raises(WorkspaceError, match="is a folder with no Python file in it"):
        load_folder(empty)
    with pytest.raises(WorkspaceError, match="does not exist"):
        load_folder(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    _write(broken / "fo_bad.py", "def oops(:\n")
    with pytest.raises(WorkspaceError, match=r"fo_bad\.py failed: SyntaxError"):
        load_folder(broken)
