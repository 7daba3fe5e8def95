"""The scheduler daemon as a child process of ``conveyor dev``.

The daemon runs the workspace's code as it was when it started, so a change
of the code means a new daemon: ``restart`` stops the old one (SIGTERM, a
bounded wait, then SIGKILL) and starts another. Runs in flight are not the
daemon's to stop: their workers are processes of their own sessions, and the
new daemon watches them.

The child runs in a process group of its own, so the terminal's Ctrl-C
reaches only ``conveyor dev``, which stops the child itself. Its standard
input is a pipe that only ``conveyor dev`` writes to:
if ``conveyor dev`` dies without stopping it (SIGKILL), the child reads the
end of it and stops itself (``stop_with_parent``), so no daemon outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable

# How long a daemon has to finish its pass and stop its launch server after SIGTERM.
STOP_WAIT = 15.0


class DaemonChild:
    """Starts, restarts and stops the daemon process ``command`` names.

    ``say`` prints one line for the user; ``processes`` (the server's
    ``ServerState.processes``) shows what the daemon is doing.
    """

    def __init__(
        self,
        command: list[str],
        say: Callable[[str], None],
        processes: dict[str, str],
        *,
        stop_wait: float = STOP_WAIT,
    ) -> None:
        self.command = command
        self.say = say
        self.processes = processes
        self.stop_wait = stop_wait
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._closed = False
        self.processes["daemon"] = "not started: the workspace has not loaded yet"

    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, why: str = "started") -> int | None:
        """Start a daemon unless one runs (or ``close`` was called); its pid."""
        with self._lock:
            if self._closed:
                return None
            if self.proc is not None and self.proc.poll() is None:
                return self.proc.pid
            # A process group of its own: a Ctrl-C at the terminal reaches ``conveyor dev``
            # alone, which then stops the daemon in order (and says so), instead of the
            # daemon racing it to the exit.
            proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, env=os.environ.copy(), process_group=0
            )
            self.proc = proc
            self.processes["daemon"] = f"running (pid {proc.pid})"
            self.say(f"daemon {why} (pid {proc.pid})")
            threading.Thread(
                target=self._wait, args=(proc,), name="conveyor-daemon-wait", daemon=True
            ).start()
            return proc.pid

    def restart(self) -> int | None:
        """Stop the daemon that runs, if one does, and start a new one."""
        with self._lock:
            if self._closed:
                return None
            was_running = self.proc is not None and self.proc.poll() is None
            self._stop(self.proc)
            return self.start("restarted with the new code" if was_running else "started")

    def close(self) -> str | None:
        """Stop the daemon for good; what was done (``None``: no daemon ran)."""
        with self._lock:
            self._closed = True
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return None
            return self._stop(proc)

    def not_started(self, why: str) -> None:
        """Say in ``processes`` why no daemon runs (the code does not load)."""
        with self._lock:
            if self.pid is None:
                self.processes["daemon"] = f"not started: {why}"

    def _stop(self, proc: subprocess.Popen[bytes] | None) -> str | None:
        if proc is None or proc.poll() is not None:
            return None
        self.processes["daemon"] = f"stopping (pid {proc.pid})"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self.stop_wait)
            done = f"the daemon (pid {proc.pid})"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            done = (
                f"the daemon (pid {proc.pid}; killed, as it still ran "
                f"{self.stop_wait:g} s after SIGTERM)"
            )
        if proc.stdin is not None:
            proc.stdin.close()
        self.processes["daemon"] = "stopped"
        return done

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        """Say so when the daemon ends by itself (not stopped by this object)."""
        code = proc.wait()
        with self._lock:
            # A daemon this object stopped, or one a restart replaced, is not news.
            if proc is not self.proc or self._closed or self.processes["daemon"] == "stopped":
                return
            self.processes["daemon"] = (
                f"exited with code {code}; it starts again when the code changes"
            )
            self.say(
                f"the daemon (pid {proc.pid}) exited with code {code}; "
                f"it starts again when the code changes"
            )


def stop_with_parent() -> None:
    """In the daemon child: SIGTERM this process once standard input ends (the
    ``conveyor dev`` that started it is gone)."""

    def wait() -> None:
        # The file descriptor, not sys.stdin: a thread blocked in a buffered read would
        # hold its lock while the interpreter shuts down.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="conveyor-parent-watch", daemon=True).start()
