"""A workspace that starts a thread when it is imported (a metrics client, say)."""

from __future__ import annotations

import threading
import time

from conveyor import job

threading.Thread(target=lambda: time.sleep(3600), name="metrics-flusher", daemon=True).start()


@job(execute={"concurrency": None})
def after_threads() -> int:
    return 1
