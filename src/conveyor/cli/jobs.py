"""``conveyor jobs``: what a workspace defines."""

from __future__ import annotations

from typing import Any

import click

from conveyor.cli.main import echo_json
from conveyor.cli.workspace import load_workspace, workspace_options


@click.group("jobs")
def jobs_group() -> None:
    """List the jobs of a workspace."""


@jobs_group.command("list")
@click.argument("target", required=False)
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_jobs(target: str | None, module: str | None, as_json: bool) -> None:
    """List the jobs in TARGET (a file) or -m MODULE."""
    ws = load_workspace(target, module)
    rows: list[dict[str, Any]] = [
        {
            "name": j.name,
            "kind": j.kind,
            "tasks": len(j.graph) if j.graph is not None else None,
            "version": j.version,
            "description": (j.description or "").partition("\n")[0],
        }
        for j in ws.jobs.values()
    ]
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    from conveyor.cli.output import console

    table = Table(box=None, header_style="bold")
    for col in ("NAME", "KIND", "TASKS", "VERSION", "DESCRIPTION"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            "-" if r["tasks"] is None else str(r["tasks"]),
            r["version"],
            r["description"],
        )
    console().print(table)
