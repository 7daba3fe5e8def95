"""W8: the runs list and the run page at 1,000,000 runs and 10,000,000 task runs.

.venv/bin/python benchmarks/control_plane_fill.py     # once: fills conveyor_bench_w8
.venv/bin/python benchmarks/control_plane.py [--url ...] [--no-browser]

Serves the app with uvicorn on 127.0.0.1 against that database and times,
over HTTP, the API's runs list (first page, a cursor 900,000 runs deep,
filtered by job, by status, by tag) and a run's detail, as medians of warm
requests; then, in Debian's Chromium, the run page of the 10,000-task run from
navigation to its load event with its timeline drawn (a graph of more than 400
tasks is not drawn: the page says so and lists the tasks).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from common import emit, median_time
from control_plane_fill import BIG_RUN, DATABASE
from conveyor.server.app import create_app
from conveyor.server.runner import bound_url, make_server
from conveyor.server.state import ServerState, WorkspaceHolder
from conveyor.storage.instance import Instance
from conveyor.storage.run_queries import encode_cursor
from conveyor.workspace import load_file

EXAMPLES = Path(__file__).parent.parent / "examples" / "pipelines.py"
TARGET_API = 0.200
TARGET_PAGE = 2.0


def deep_cursor(instance: Instance, depth: int) -> str:
    """The cursor after the ``depth``-th newest run (found once, by OFFSET, untimed)."""
    with instance.db.read() as conn:
        row = conn.execute(
            sa.text("SELECT created_at, id FROM runs ORDER BY created_at DESC, id DESC OFFSET :n"),
            {"n": depth},
        ).first()
    assert row is not None, "fill the database first: benchmarks/control_plane_fill.py"
    return encode_cursor(float(row[0]), str(row[1]))


def time_api(base: str, instance: Instance) -> None:
    cursor = deep_cursor(instance, 900_000)
    pages: dict[str, tuple[str, dict[str, Any]]] = {
        "first page": ("/api/runs", {"limit": 50}),
        "cursor 900,000 deep": ("/api/runs", {"limit": 50, "cursor": cursor}),
        "by job": ("/api/runs", {"limit": 50, "job": "job_042"}),
        "by status (failure)": ("/api/runs", {"limit": 50, "status": "failure"}),
        "by tag (team=risk)": ("/api/runs", {"limit": 50, "tag": "team=risk"}),
        "status counts, one job": ("/api/runs/counts", {"job": "job_042"}),
        "run detail, 10,000 tasks": (f"/api/runs/{BIG_RUN}", {}),
        # The UI's runs page (HTML): a page of runs and the counts by status.
        "UI runs page": ("/runs", {}),
        "UI runs page, one job": ("/runs", {"job": "job_042"}),
    }
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, (path, params) in pages.items():

            def get(path: str = path, params: dict[str, Any] = params) -> None:
                r = client.get(path, params=params)
                r.raise_for_status()

            seconds = median_time(get, 9, warmup=2)
            targeted = "10,000" not in name and not name.startswith("UI")
            emit(
                workload=f"W8 {'' if name.startswith('UI') else 'API '}{name}",
                seconds=round(seconds, 4),
                target_s=TARGET_API if targeted else None,
                meets=seconds < TARGET_API if targeted else None,
            )


def time_run_page(base: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        times = []
        for _ in range(4):
            start = time.perf_counter()
            # Scripts that draw run on DOMContentLoaded, before "load".
            page.goto(f"{base}/runs/{BIG_RUN}", wait_until="load", timeout=60_000)
            page.wait_for_selector("#run-gantt .bar", timeout=60_000)
            times.append(time.perf_counter() - start)
        browser.close()
    seconds = sorted(times[1:])[1]  # the median of the warm loads
    emit(
        workload="W8 run page of 10,000 tasks in Chromium",
        seconds=round(seconds, 3),
        cold_s=round(times[0], 3),
        target_s=TARGET_PAGE,
        meets=seconds < TARGET_PAGE,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}")
    parser.add_argument("--no-browser", action="store_true", help="Time the API only.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CONVEYOR_HOME"] = home
        instance = Instance.at(home, args.url)  # upgrades the schema once, untimed
        holder = WorkspaceHolder(lambda: load_file(EXAMPLES), str(EXAMPLES))
        holder.reload()
        server = make_server(create_app(ServerState(instance, holder)), "127.0.0.1", 0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while (base := bound_url(server, "127.0.0.1")) is None:
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 30 s")
            time.sleep(0.05)
        try:
            time_api(base, instance)
            if not args.no_browser:
                time_run_page(base)
        finally:
            server.should_exit = True
            thread.join(10)
            instance.close()


if __name__ == "__main__":
    main()
