"""The run conveniences on ``Job`` reach execution and storage through ``run_facade``."""

from __future__ import annotations

import subprocess
import sys

from conveyor import Instance, task, workflow


@task
def greet() -> str:
    print("hello from greet")
    return "hi"


@task
def shout(word: str) -> str:
    return word.upper()


@workflow
def hello() -> None:
    shout(greet())


def test_run_then_inspect_the_run_through_the_job(instance: Instance) -> None:
    result = hello.run(instance=instance)

    assert result.success
    [record] = hello.runs(instance=instance)
    assert (record.id, record.job_name, record.job_version) == (
        result.run_id,
        "hello",
        hello.version,
    )
    details = hello.run_details(result.run_id, instance=instance)
    assert {t.key for t in details.tasks} == {"greet", "shout"}
    assert hello.result(result.run_id, "shout", instance=instance) == "HI"
    assert "hello from greet" in hello.logs(result.run_id, "greet", instance=instance)


def test_a_rerun_records_a_second_run(instance: Instance) -> None:
    first = hello.run(instance=instance)
    again = hello.rerun(first.run_id, full=True, instance=instance)

    assert again.success
    assert again.run_id != first.run_id
    assert len(hello.runs(instance=instance)) == 2


def test_the_facade_loads_no_higher_layer_until_called() -> None:
    code = (
        "import sys, conveyor.definitions.run_facade; "
        "print(sorted(m for m in sys.modules if m.startswith(('conveyor.execution', "
        "'conveyor.storage', 'conveyor.scheduler'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
