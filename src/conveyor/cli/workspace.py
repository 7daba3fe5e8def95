"""Shared options of commands that load a workspace: ``TARGET`` or ``-m MODULE``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from conveyor.errors import WorkspaceError
from conveyor.workspace import Workspace, load_file, load_module


def workspace_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "-m",
        "--module",
        "module",
        metavar="MODULE",
        help="Load jobs from this module instead of a file.",
    )(fn)
    return fn


def load_workspace(target: str | None, module: str | None) -> Workspace:
    """Load the workspace a command names, with one clear error for user-code failures."""
    if module and target:
        raise click.UsageError("give a workspace file or -m MODULE, not both")
    if not module and not target:
        raise click.UsageError("name a workspace: a file such as pipelines.py, or -m MODULE")
    where = module or target
    try:
        return load_module(module) if module else load_file(target or "")
    except WorkspaceError:
        raise
    except Exception as e:
        raise WorkspaceError(f"loading {where} failed: {type(e).__name__}: {e}") from e
