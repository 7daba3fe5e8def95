"""A workspace with none of the other test workspaces' jobs (a daemon of another team)."""

from __future__ import annotations

from conveyor import job


@job(execute={"concurrency": None})
def unrelated() -> int:
    return 0
