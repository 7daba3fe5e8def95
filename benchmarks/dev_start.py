"""W9: how long `conveyor dev examples` takes from its start to its first page.

Each run starts `conveyor dev examples` on a free port of 127.0.0.1 with a
fresh CONVEYOR_HOME, and polls `/` (the UI's overview; `/api/health` if
there is no UI page) until it first answers 200. The clock starts just
before the process starts. Runs are stopped with Ctrl-C (SIGINT to the
process group). A second figure: on a copy of examples/, how long a new
file's job takes to show at `/api/workspace` (the issue asks for 2 s).

.venv/bin/python benchmarks/dev_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from common import emit, median_time

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
# A start slower than this is a failure, not a figure.
GIVE_UP = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def first_answer(url: str, proc: subprocess.Popen[bytes], started: float) -> tuple[float, str]:
    """Seconds from ``started`` to the first 200 of ``/`` (or ``/api/health`` when ``/``
    is not a page), and which path answered."""
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() - started < GIVE_UP:
            if proc.poll() is not None:
                raise SystemExit(f"conveyor dev exited with code {proc.returncode}")
            try:
                response = client.get(f"{url}/")
                if response.status_code == 200:
                    return time.perf_counter() - started, "/"
                if response.status_code == 404:
                    health = client.get(f"{url}/api/health")
                    if health.status_code == 200:
                        return time.perf_counter() - started, "/api/health"
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    raise SystemExit(f"conveyor dev did not answer within {GIVE_UP:g} s")


def one_run() -> tuple[float, float, str]:
    """(seconds to the first answer, seconds Ctrl-C took to stop it, the path)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CONVEYOR_HOME": home}
        env.pop("CONVEYOR_DATABASE_URL", None)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "conveyor"), "dev", "examples", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            seconds, path = first_answer(f"http://127.0.0.1:{port}", proc, started)
            stopping = time.perf_counter()
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=GIVE_UP)
            stop = time.perf_counter() - stopping
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return seconds, stop, path


NEW_JOB = """
from conveyor import task, workflow

@task
def step():
    return 1

@workflow
def {name}():
    step()
"""


def reload_times(edits: int) -> list[float]:
    """Seconds from writing a new file into a copy of examples/ to its job in
    ``/api/workspace``, for each of ``edits`` edits to one running ``conveyor dev``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "examples"
        shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "CONVEYOR_HOME": str(Path(tmp) / "home")}
        env.pop("CONVEYOR_DATABASE_URL", None)
        proc = subprocess.Popen(
            [str(BIN / "conveyor"), "dev", str(folder), "--port", str(port)],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        times = []
        try:
            first_answer(url, proc, time.perf_counter())
            with httpx.Client(timeout=5.0) as client:
                for i in range(edits):
                    name = f"bench_job_{i}"
                    edited = time.perf_counter()
                    (folder / f"bench_{i}.py").write_text(NEW_JOB.format(name=name))
                    while name not in client.get(f"{url}/api/workspace").json()["jobs"]:
                        if time.perf_counter() - edited > GIVE_UP:
                            raise SystemExit(f"the new job did not show within {GIVE_UP:g} s")
                        time.sleep(0.01)
                    times.append(time.perf_counter() - edited)
                    time.sleep(1.0)  # let the daemon's restart settle before the next edit
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=GIVE_UP)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one_run()  # warm-up: the operating system's file cache, compiled bytecode
    results = [one_run() for _ in range(args.runs)]
    # What a command that starts no server costs on this machine now, to read the figure by.
    helped = median_time(
        lambda: subprocess.run([str(BIN / "conveyor"), "--help"], check=True, capture_output=True),
        5,
    )
    starts = [r[0] for r in results]
    emit(
        workload="W9 conveyor dev examples: start to first page",
        path=results[-1][2],
        runs=args.runs,
        median_s=round(statistics.median(starts), 3),
        min_s=round(min(starts), 3),
        max_s=round(max(starts), 3),
        ctrl_c_stop_median_s=round(statistics.median(r[1] for r in results), 3),
        conveyor_help_s=round(helped, 3),
        target_s=3.0,
    )
    edits = reload_times(args.runs)
    emit(
        workload="W9 conveyor dev: a new file's job shown at /api/workspace",
        edits=len(edits),
        median_s=round(statistics.median(edits), 3),
        max_s=round(max(edits), 3),
        target_s=2.0,
    )


if __name__ == "__main__":
    main()
