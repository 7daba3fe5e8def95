from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor import Config, DefinitionError, Job, job, task, workflow


@task
def one() -> int:
    return 1


def test_job_options_are_validated_and_kept() -> None:
    @job(tags={"team": "quant"}, execute={"timeout": "4h", "concurrency": 2, "retries": 1})
    def nightly(context) -> None:  # type: ignore[no-untyped-def]
        """Runs at night.

        More text."""

    assert isinstance(nightly, Job)
    assert nightly.kind == "job"
    assert nightly.graph is None
    assert nightly.description is not None
    assert nightly.description.startswith("Runs at night.")
    assert nightly.tags == {"team": "quant"}
    assert nightly.execute.timeout == 4 * 3600
    assert nightly.execute.concurrency == 2
    assert nightly.execute.retries == 1


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"execute": {"timeout": "forever"}}, "invalid execute timeout 'forever'"),
        ({"execute": {"concurrency": 0}}, "concurrency=0"),
        ({"execute": {"retries": -1}}, "retries=-1"),
        ({"execute": {"tiemout": "1h"}}, "unknown execute option(s) 'tiemout'"),
        ({"execute": {1: 2, "x": 3}}, "unknown execute option(s) 1, 'x'"),
        ({"require": {"gpu": 1}}, "unknown require key(s) 'gpu'; known: timezone"),
        ({"executor": "warp"}, "unknown executor 'warp'"),
        ({"resources": {"not valid": 1}}, "must be a Python identifier"),
        ({"name": "9lives"}, "must not start with a digit"),
        ({"trigger": "every:never"}, "Invalid trigger 'every:never'"),
        ({"retry": 2}, "RetryPolicy"),
    ],
)
def test_bad_job_options(options: dict[str, object], fragment: str) -> None:
    def body() -> None: ...

    with pytest.raises(DefinitionError) as err:
        job(**options)(body)
    assert fragment in str(err.value)


def test_job_parameters_become_a_config_model() -> None:
    @job(resources={"db": object()})
    def load(context, db, table: str, limit: int = 10) -> None:  # type: ignore[no-untyped-def]
        ...

    assert load.config_model is not None
    assert set(load.config_model.model_fields) == {"table", "limit"}


def test_config_parameter_and_required_plain_parameters_do_not_mix() -> None:
    class Cfg(Config):
        a: int

    with pytest.raises(DefinitionError, match="put every config field in that class"):

        @job
        def mixed(cfg: Cfg, other: int) -> None: ...


def test_calling_jobs_directly() -> None:
    @job
    def body(x: int = 2) -> int:
        return x * 3

    @workflow
    def wf() -> None:
        one()

    assert body(4) == 12
    with pytest.raises(DefinitionError, match=r"wf.run\(...\)"):
        wf()


def _version_of(tmp_path: Path, source: str) -> str:
    path = tmp_path / "wsv.py"
    path.write_text(textwrap.dedent(source))
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import wsv; print(wsv.wf.version)"
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


SOURCE = """
from conveyor import task, workflow

@task
def a():
    return 1

@task
def b(x):
    return x + 1

@workflow
def wf():
    b(a())
"""


def test_version_is_stable_across_processes_and_changes_with_the_code(tmp_path: Path) -> None:
    first = _version_of(tmp_path, SOURCE)
    assert first == _version_of(tmp_path, SOURCE)
    assert len(first) == 16
    assert _version_of(tmp_path, SOURCE.replace("x + 1", "x + 2")) != first
    assert _version_of(tmp_path, SOURCE.replace("b(a())", "b(a())\n    a()")) != first
