"""``conveyor logs``: the captured output of a run's tasks."""

from __future__ import annotations

import click


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
def logs_command(run_id: str, task_key: str | None, stderr: bool, lines: int) -> None:
    """Print what the tasks of RUN_ID wrote to stdout (or --stderr)."""
    from conveyor.storage.instance import Instance

    instance = Instance.from_env()
    rid = instance.run_store.resolve_id(run_id)
    if task_key is not None:
        click.echo(instance.logs(rid, task_key, stderr=stderr, lines=lines), nl=False)
        return
    details = instance.run_details(rid)
    for t in details.tasks:
        text = instance.log_store.read(
            rid, t.key, stream="stderr" if stderr else "stdout", lines=lines
        )
        if text:
            click.secho(f"== {t.key} ==", bold=True)
            click.echo(text, nl=False)
