"""``conveyor logs``: the captured output of a run's tasks, as they run or after."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from conveyor.cli.credentials import Remote

# How often --follow looks for new lines: well within the second a line may take to show.
FOLLOW_POLL = 0.2


@click.command("logs")
@click.argument("run_id")
@click.option("-t", "--task", "task_key", metavar="TASK", help="Only this task (its key).")
@click.option("--stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="At most this many last lines per task.",
)
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="With --task: print new lines as the task writes them, until it ends.",
)
def logs_command(run_id: str, task_key: str | None, stderr: bool, lines: int, follow: bool) -> None:
    """Print what the tasks of RUN_ID wrote to stdout (or --stderr), so far if they run."""
    from conveyor.cli.credentials import current_remote

    if follow and task_key is None:
        raise click.UsageError("--follow follows one task: name it with --task TASK")
    remote = current_remote()
    if remote is not None:
        _remote_logs(remote, run_id, task_key, "stderr" if stderr else "stdout", lines, follow)
        return
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    rid = instance.run_store.resolve_id(run_id)
    stream = "stderr" if stderr else "stdout"
    if follow:
        assert task_key is not None
        _follow(instance, rid, task_key, stream)
        return
    if task_key is not None:
        click.echo(instance.logs(rid, task_key, stderr=stderr, lines=lines), nl=False)
        return
    details = instance.run_details(rid)
    for key in ["environment", *(t.key for t in details.tasks)]:
        text = instance.log_store.read(rid, key, stream=stream, lines=lines)
        if text:
            click.secho(f"== {key} ==", bold=True)
            click.echo(text, nl=False)


def _follow(instance: Any, run_id: str, task_key: str, stream: str) -> None:
    """Print the task's lines as they come, until the task (or its run) has ended."""
    from conveyor.errors import NotFoundError
    from conveyor.storage.logs import LogTail

    tail = LogTail(instance.log_store, run_id, task_key, stream)
    while True:
        # Seen before the lines are read: an attempt's end is written with its output.
        ended, known = _ended(instance, run_id, task_key)
        text = tail.poll()
        if text:
            click.echo(text, nl=False)
        if ended:
            if not known:
                raise NotFoundError(f"run {run_id} ended without running task {task_key!r}")
            return
        time.sleep(FOLLOW_POLL)


def _ended(instance: Any, run_id: str, task_key: str) -> tuple[bool, bool]:
    """Whether the task will write no more (it ended, and no retry follows, or its run
    ended), and whether the run has the task at all (a @job body may call it later)."""
    from conveyor.storage.states import TaskStatus

    run_ended = instance.run(run_id).status.is_terminal
    attempts = instance.task_run_store.for_task(run_id, task_key)
    if run_ended or not attempts:
        return run_ended, bool(attempts)
    last = attempts[-1].status
    return last.is_terminal and last is not TaskStatus.UP_FOR_RETRY, True


def _remote_logs(
    remote: Remote, run_id: str, task_key: str | None, stream: str, lines: int, follow: bool
) -> None:
    """``conveyor logs`` on a server, through ``/api/runs/{id}/tasks/{key}/logs``."""
    from conveyor.cli.client import RemoteError, client
    from conveyor.errors import NotFoundError
    from conveyor.storage.states import RunStatus

    with client(remote) as api:
        run = api.run(run_id)
        rid = run["id"]
        if follow:
            assert task_key is not None
            offset = 0
            while True:
                try:
                    chunk = api.log(rid, task_key, stream=stream, offset=offset)
                except RemoteError as e:
                    # Not started yet: a @job's body may call it later, as long as it runs.
                    if e.status != 404 or offset:
                        raise
                    if RunStatus(api.run(rid)["status"]).is_terminal:
                        raise NotFoundError(
                            f"run {rid} ended without running task {task_key!r}"
                        ) from None
                    time.sleep(FOLLOW_POLL)
                    continue
                if chunk["text"]:
                    click.echo(chunk["text"], nl=False)
                offset = chunk["next_offset"]
                if chunk["complete"]:
                    return
                if offset >= chunk["size"]:
                    time.sleep(FOLLOW_POLL)
        if task_key is not None:
            click.echo(_last(api.log_text(rid, task_key, stream=stream), lines), nl=False)
            return
        for t in run["tasks"]:
            text = _last(api.log_text(rid, t["key"], stream=stream), lines)
            if text:
                click.secho(f"== {t['key']} ==", bold=True)
                click.echo(text, nl=False)


def _last(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``."""
    return "".join(text.splitlines(keepends=True)[-lines:])
