"""Loading a workspace's code again when its files change, for ``conveyor dev``.

The watcher (watchfiles, in a thread) sees a ``.py`` file of the workspace
change; the ``Reloader`` forgets the modules imported from the workspace's
folders (so that a module target, or a helper a workspace file imports, is
imported afresh), loads the code again through the ``WorkspaceHolder`` (which
keeps the last good jobs when the new code does not load) and tells its
listeners (``conveyor dev`` restarts its daemon on good code).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from conveyor.errors import WorkspaceError
from conveyor.server.state import LoadError, WorkspaceHolder

log = logging.getLogger("conveyor.dev")

# How long the watcher waits for a burst of writes (an editor's save, a git checkout)
# to end before it reloads: short, so that a change shows within a second or so.
DEBOUNCE_MS = 200


@dataclass(frozen=True, slots=True)
class WatchedCode:
    """The folders whose ``.py`` files are a workspace's code.

    ``recursive`` is False for a file or a folder target (their folder, without its
    subfolders: a project's folder may hold a virtualenv), True for a package.
    """

    folders: tuple[Path, ...]
    recursive: bool

    def holds(self, path: str | Path) -> bool:
        """``path`` is a file of this code (under a subfolder too, if recursive)."""
        p = Path(path).resolve()
        for folder in self.folders:
            if p.parent == folder or (self.recursive and p.is_relative_to(folder)):
                return True
        return False

    def describe(self) -> str:
        shown = ", ".join(str(f) for f in self.folders)
        return f"{shown} and its subfolders" if self.recursive else shown


def code_of(target: str | None, module: str | None) -> WatchedCode:
    """What to watch for a workspace named as ``conveyor dev`` names it.

    A ``WorkspaceError`` if the file, folder or module is not there.
    """
    if module:
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
            raise WorkspaceError(
                f"no module named {module!r}; check the name, or run from the folder that holds it"
            )
        origin = Path(spec.origin).resolve()
        if spec.submodule_search_locations:
            return WatchedCode((origin.parent,), recursive=True)
        return WatchedCode((origin.parent,), recursive=False)
    path = Path(target or "").expanduser()
    if path.is_dir():
        return WatchedCode((path.resolve(),), recursive=False)
    if path.is_file():
        return WatchedCode((path.resolve().parent,), recursive=False)
    raise WorkspaceError(
        f"workspace {target!r} does not exist: name a Python file, a folder of them, or -m MODULE"
    )


def forget_modules(code: WatchedCode) -> list[str]:
    """Drop from ``sys.modules`` the modules imported from ``code``'s files, so that the
    next load imports them afresh; return their names."""
    gone = []
    for name, module in list(sys.modules.items()):
        if name == "conveyor" or name.startswith("conveyor."):
            continue
        file = getattr(module, "__file__", None)
        if file and code.holds(file):
            del sys.modules[name]
            gone.append(name)
    importlib.invalidate_caches()
    return gone


Listener = Callable[[LoadError | None], None]


@dataclass(slots=True)
class Reloader:
    """Loads the workspace's code again, one load at a time, and tells its listeners."""

    holder: WorkspaceHolder
    code: WatchedCode
    listeners: list[Listener] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reload(self) -> LoadError | None:
        """Load the code again; the error if it did not load (the old jobs stay)."""
        with self._lock:
            forget_modules(self.code)
            error = self.holder.reload()
            for listener in self.listeners:
                try:
                    listener(error)
                except Exception:
                    log.exception("a listener of the workspace's reload failed")
            return error

    def install(self, app: FastAPI) -> None:
        """Make ``POST /api/workspace/reload`` of ``app`` go through this reloader."""
        app.state.reloader = self


def reloader_of(app: FastAPI) -> Reloader | None:
    """The reloader ``conveyor dev`` installed on ``app``, if any."""
    reloader = getattr(app.state, "reloader", None)
    return reloader if isinstance(reloader, Reloader) else None


class CodeWatcher:
    """Calls ``on_change(paths)`` from a thread each time ``.py`` files of ``code``
    change (created, edited, deleted), after a short debounce."""

    def __init__(
        self,
        code: WatchedCode,
        on_change: Callable[[list[str]], None],
        *,
        ignore: Iterable[Path] = (),
    ) -> None:
        self.code = code
        self.on_change = on_change
        self.ignore = [p.resolve() for p in ignore]
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="conveyor-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> bool:
        """Stop watching; True once the thread ended (within ``wait`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _watch(self) -> None:
        from watchfiles import PythonFilter, watch

        watch_filter = PythonFilter(ignore_paths=self.ignore)
        try:
            for changes in watch(
                *self.code.folders,
                watch_filter=lambda change, path: (
                    watch_filter(change, path) and self.code.holds(path)
                ),
                debounce=DEBOUNCE_MS,
                step=50,
                stop_event=self._stop,
                rust_timeout=1000,
                recursive=self.code.recursive,
                raise_interrupt=False,
            ):
                paths = sorted({path for _, path in changes})
                try:
                    self.on_change(paths)
                except Exception:
                    log.exception("reloading after a change of %s failed", ", ".join(paths))
        except Exception:
            if not self._stop.is_set():
                log.exception("watching %s for changes failed", self.code.describe())
