"""The run's heartbeat, and how a cancel request or a lost lease reaches a running run.

While a run executes, a thread writes its heartbeat every
``HEARTBEAT_INTERVAL`` seconds (so that a run whose process died can be told
from one that is busy) and reads its status back: when someone has moved the
run to ``canceling`` (``Instance.cancel_run``), it sets the run's cancel
flag, and where the user's code runs in the run's own thread it interrupts
that thread too. When the database refuses the run's fencing token, the run
was judged dead or handed on while this process could not answer: the
thread stops the run the same way, and nothing more of it is written.

A run worker's run is supervised (``execution.supervisor``): its heartbeat
comes from the supervising process, which user code cannot starve of the
GIL, and this thread only reads the run's status (``heartbeat=False``).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading

from conveyor.errors import LeaseLostError
from conveyor.execution.state import RunState
from conveyor.execution.timeouts import RunCanceled
from conveyor.storage.states import RunStatus

HEARTBEAT_INTERVAL = 1.0

log = logging.getLogger("conveyor")


class RunMonitor:
    def __init__(
        self,
        state: RunState,
        *,
        interrupt: bool,
        interval: float = HEARTBEAT_INTERVAL,
        heartbeat: bool = True,
    ) -> None:
        self.state = state
        self.interrupt = interrupt
        self.heartbeat = heartbeat
        self.interval = interval
        self.run_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, daemon=True, name=f"conveyor-heartbeat-{state.run_id[:8]}"
        )
        self._armed = True
        self._lock = threading.Lock()

    def __enter__(self) -> RunMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._armed = False
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        state = self.state
        store = state.instance.run_store
        while not self._stop.wait(self.interval):
            try:
                if self.heartbeat:
                    status = store.heartbeat(state.run_id, state.token)
                else:
                    status = store.get(state.run_id).status
                    if state.token is not None and status.is_terminal:
                        raise LeaseLostError(f"run {state.run_id} was ended from outside")
            except LeaseLostError as e:
                self.lose(str(e))
                return
            except Exception:
                continue  # the database is away: try again on the next tick
            if status is RunStatus.CANCELING and not state.cancel_requested.is_set():
                state.cancel_requested.set()
                if self.interrupt:
                    self._interrupt_run_thread()

    def lose(self, why: str) -> None:
        """The run is no longer this process's: record why (here: nothing more can be written
        to the database) and stop it as a cancel does."""
        state = self.state
        if state.lost is None:
            state.lost = why
            log.error("%s; stopping it", why)
        state.recorder.lost = state.recorder.lost or why
        if not state.cancel_requested.is_set():
            state.cancel_requested.set()
            if self.interrupt:
                self._interrupt_run_thread()

    def _interrupt_run_thread(self) -> None:
        with self._lock:
            if not self._armed:
                return
            if self.run_thread == threading.main_thread().ident:
                # A real signal also wakes the main thread from time.sleep.
                signal.pthread_kill(self.run_thread, signal.SIGINT)
            else:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.run_thread), ctypes.py_object(RunCanceled)
                )
