from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor import NotFoundError, WorkspaceError
from conveyor.workspace import load, load_file, load_module


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
