"""How a run is stopped: a signal, raised in the run's own thread, never injected.

Stops are cooperative. A cancel request (``Instance.cancel_run``, a lost
lease) sets the run's ``cancel_requested`` flag; the engine sees it between
steps and raises ``RunCanceled`` in the run's thread, where nothing else is
half done. No exception is ever raised into another thread (such an
exception could land inside a database flush, a connection checkout or a
lock). A step that does not return is stopped by a process executor, which
kills the step's process tree; in the run's own process it runs to its end.
"""

from __future__ import annotations


class RunCanceled(BaseException):
    """Raised in a run's thread (and in its ``@job`` body's) when the run is being stopped.

    A ``BaseException``, so that code catching ``Exception`` does not swallow it.
    """
