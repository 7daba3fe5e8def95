"""Shared options of commands that load a workspace: ``TARGET`` or ``-m MODULE``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from conveyor.errors import WorkspaceError
from conveyor.workspace import Workspace, load_file, load_folder, load_module


def workspace_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "-m",
        "--module",
        "module",
        metavar="MODULE",
        help="Load jobs from this module instead of a file.",
    )(fn)
    return fn


def partitions_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-p/--partition KEY`` (repeatable) into ``partitions``; ``default`` says what
    happens without it."""
    return click.option(
        "-p",
        "--partition",
        "partitions",
        multiple=True,
        metavar="KEY",
        help=f"Only these keys of a partitioned job (repeatable; default: {default}).",
    )


def split_args(
    args: tuple[str, ...], module: str | None, what: str, *, required: bool = True
) -> tuple[str | None, str | None]:
    """``[TARGET] WHAT`` from a command's positional words: TARGET unless -m MODULE names
    the workspace. ``what`` names the second word in errors (``JOB``, ``JOB or tag:NAME``)."""
    if module:
        if len(args) > 1 or (required and not args):
            raise click.UsageError(
                f"with -m MODULE, give {'one' if required else 'at most a'} {what}"
            )
        return None, (args[0] if args else None)
    if len(args) > 2 or (required and len(args) != 2):
        raise click.UsageError(
            f"give a TARGET file and {'one' if required else 'at most a'} {what}"
        )
    return (args[0] if args else None), (args[1] if len(args) > 1 else None)


def load_workspace(target: str | None, module: str | None) -> Workspace:
    """Load the workspace a command names (a file, a folder of files, or -m MODULE), with
    one clear error for user-code failures."""
    if module and target:
        raise click.UsageError("give a workspace file or folder, or -m MODULE, not both")
    if not module and not target:
        raise click.UsageError(
            "name a workspace: a file such as pipelines.py, a folder of them, or -m MODULE"
        )
    where = module or target
    try:
        if module:
            return load_module(module)
        if Path(target or "").expanduser().is_dir():
            return load_folder(target or "")
        return load_file(target or "")
    except WorkspaceError:
        raise
    except Exception as e:
        raise WorkspaceError(f"loading {where} failed: {type(e).__name__}: {e}") from e
