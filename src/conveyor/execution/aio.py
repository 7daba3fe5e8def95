"""Running ``async def`` tasks and job bodies from the synchronous engine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion and return its result.

    Where this thread already runs an event loop (a notebook), the coroutine
    runs on a fresh loop in a helper thread instead of failing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="conveyor-async") as pool:
        return pool.submit(asyncio.run, coro).result()
