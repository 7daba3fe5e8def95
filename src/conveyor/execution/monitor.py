"""The run's heartbeat, and how a cancel request or a lost lease reaches a running run.

While a run executes, a thread writes its heartbeat every
``HEARTBEAT_INTERVAL`` seconds (so that a run whose process died can be told
from one that is busy) and reads its status back: when someone has moved the
run to ``canceling`` (``Instance.cancel_run``), it sets the run's cancel
flag, which the engine sees between steps (``execution.timeouts``: nothing
is raised into a running thread). When the database refuses the run's
fencing token, the run was judged dead or handed on while this process
could not answer: the thread stops the run the same way, and nothing more
of it is written.

A run worker's run is supervised (``execution.supervisor``): its heartbeat
comes from the supervising process, which user code cannot starve of the
GIL, and this thread only reads the run's status (``heartbeat=False``).
"""

from __future__ import annotations

import logging
import threading

from conveyor.errors import LeaseLostError
from conveyor.execution.state import RunState
from conveyor.storage.states import RunStatus

HEARTBEAT_INTERVAL = 1.0

log = logging.getLogger("conveyor")


class RunMonitor:
    def __init__(
        self,
        state: RunState,
        *,
        interval: float = HEARTBEAT_INTERVAL,
        heartbeat: bool = True,
    ) -> None:
        self.state = state
        self.heartbeat = heartbeat
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, daemon=True, name=f"conveyor-heartbeat-{state.run_id[:8]}"
        )

    def __enter__(self) -> RunMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
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
            if status is RunStatus.CANCELING:
                state.cancel_requested.set()

    def lose(self, why: str) -> None:
        """The run is no longer this process's: record why (here: nothing more can be written
        to the database) and stop it as a cancel does."""
        state = self.state
        if state.lost is None:
            state.lost = why
            log.error("%s; stopping it", why)
        state.recorder.lost = state.recorder.lost or why
        state.cancel_requested.set()
