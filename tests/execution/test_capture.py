"""stdout, stderr and context.log are captured per task and stored with the run."""

from __future__ import annotations

import logging
import sys

import pytest

from conveyor import Instance, job, task, workflow


@task
def chatty(context) -> None:  # type: ignore[no-untyped-def]
    print("to stdout")
    print("to stderr", file=sys.stderr)
    context.log.warning("careful %s", "now")
    logging.getLogger("user.lib").error("from a library logger")


@task
def quiet() -> int:
    return 1


def test_each_task_has_its_own_streams(
    instance: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    @workflow
    def wf() -> None:
        chatty()
        quiet()

    result = wf.run(instance=instance)
    out = wf.logs(result.run_id, "chatty", instance=instance)
    err = wf.logs(result.run_id, "chatty", stderr=True, instance=instance)
    assert out.splitlines()[0] == "to stdout"
    assert out.splitlines()[1].endswith("WARNING careful now")
    assert "to stderr" in err
    assert wf.logs(result.run_id, "quiet", instance=instance) == ""
    # job.run() echoes the output too, as a plain call would
    echoed = capsys.readouterr()
    assert "to stdout" in echoed.out
    assert sys.stdout is capsys._capture.out.tmpfile or not hasattr(sys.stdout, "original")  # type: ignore[union-attr]


def test_output_outside_tasks_is_untouched(
    instance: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    @job
    def body() -> None:
        print("from the body")

    result = body.run(instance=instance)
    print("after the run")
    assert body.logs(result.run_id, "body", instance=instance) == "from the body\n"
    assert "after the run" in capsys.readouterr().out


def test_many_lines_keep_only_the_last(instance: Instance) -> None:
    @task
    def spam() -> None:
        for i in range(10_000):
            print(i)

    @workflow
    def wf() -> None:
        spam()

    result = wf.run(instance=instance)
    assert wf.logs(result.run_id, "spam", lines=3, instance=instance) == "9997\n9998\n9999\n"
    assert len(wf.logs(result.run_id, "spam", instance=instance).splitlines()) == 5000
