"""The run's heartbeat, and how a cancel request reaches a running run.

While a run executes, a thread writes its heartbeat every
``HEARTBEAT_INTERVAL`` seconds (so that a run whose process died can be told
from one that is busy) and reads its status back: when someone has moved the
run to ``canceling`` (``Instance.cancel_run``), it sets the run's cancel
flag, and where the user's code runs in the run's own thread it interrupts
that thread too.
"""

from __future__ import annotations

import ctypes
import signal
import threading

from conveyor.execution.state import RunState
from conveyor.execution.timeouts import RunCanceled
from conveyor.storage.states import RunStatus

HEARTBEAT_INTERVAL = 1.0


class RunMonitor:
    def __init__(
        self, state: RunState, *, interrupt: bool, interval: float = HEARTBEAT_INTERVAL
    ) -> None:
        self.state = state
        self.interrupt = interrupt
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
        store = self.state.instance.run_store
        while not self._stop.wait(self.interval):
            try:
                status = store.heartbeat(self.state.run_id)
                self.state.instance.lease_store.renew(self.state.run_id)
            except Exception:
                continue  # a missed heartbeat is retried on the next tick
            if status is RunStatus.CANCELING and not self.state.cancel_requested.is_set():
                self.state.cancel_requested.set()
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
