"""What the server's routes read: the instance, and the workspace as last loaded."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor.definitions.job import Job
from conveyor.definitions.sensor import Sensor
from conveyor.errors import NotFoundError, WorkspaceError
from conveyor.server.auth_settings import AuthSettings
from conveyor.storage.instance import Instance
from conveyor.workspace import Workspace


@dataclass(frozen=True, slots=True)
class LoadError:
    """Why the workspace's code did not load: shown in the UI instead of dying."""

    message: str
    traceback: str
    at: float


@dataclass(slots=True)
class WorkspaceHolder:
    """The workspace of ``loader``, loaded again by ``reload`` when its code changes.

    A load that fails keeps the last good workspace (its jobs stay visible)
    and records the error; the next good load clears it.
    """

    loader: Callable[[], Workspace]
    description: str
    workspace: Workspace | None = None
    error: LoadError | None = None
    loaded_at: float | None = None
    generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reload(self) -> LoadError | None:
        """Load the code again; return the error if it failed (the old jobs stay)."""
        with self._lock:
            try:
                ws = self.loader()
            except Exception as e:
                self.error = LoadError(
                    f"loading {self.description} failed: {type(e).__name__}: {e}",
                    "".join(traceback.format_exception(e)),
                    time.time(),
                )
                return self.error
            self.workspace, self.error = ws, None
            self.loaded_at = time.time()
            self.generation += 1
            return None

    @property
    def jobs(self) -> dict[str, Job]:
        return self.workspace.jobs if self.workspace is not None else {}

    @property
    def sensors(self) -> dict[str, Sensor]:
        return self.workspace.sensors if self.workspace is not None else {}

    def job(self, name: str) -> Job:
        """Job ``name``, or ``NotFoundError`` naming the jobs there are."""
        if self.workspace is None:
            raise WorkspaceError(
                self.error.message if self.error else f"{self.description} is not loaded yet"
            )
        job = self.workspace.jobs.get(name)
        if job is None:
            raise NotFoundError(
                f"no job {name!r} in {self.description}; its jobs: "
                f"{', '.join(sorted(self.workspace.jobs)) or 'none'}"
            )
        return job


@dataclass(slots=True)
class ServerState:
    """Everything a request may need: one per app."""

    instance: Instance
    workspace: WorkspaceHolder
    started_at: float = field(default_factory=time.time)
    # What `conveyor dev` runs beside the server (the daemon), for the overview.
    processes: dict[str, str] = field(default_factory=dict)
    # Who may call, and how they prove it (server.auth_settings); local: no login.
    auth: AuthSettings = field(default_factory=AuthSettings)
