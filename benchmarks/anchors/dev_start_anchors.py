"""The anchors of W9, side by side: `conveyor dev` against `dagster dev` and `prefect
server start`, from the start of the process to the first HTTP 200 of its first page.

A busy machine inflates every start, so the only fair figure is a ratio from runs
interleaved in one session: conveyor, dagster, prefect, conveyor, dagster, ... Each
run gets a free port of 127.0.0.1 and a fresh temporary home (CONVEYOR_HOME;
DAGSTER_HOME; PREFECT_HOME and a SQLite PREFECT_API_DATABASE_CONNECTION_URL in it),
and is polled every 10 ms until it answers 200:

    conveyor dev examples --port P     /              (the overview page)
    dagster dev -f defs.py -p P        /              (the webserver's page)
    prefect server start --port P      /api/health    (its UI is a static app)

The clock starts just before the process starts. After each run the whole process
group is stopped: SIGTERM, then SIGKILL if it is still there after 10 s.

Dagster and Prefect are no dependencies of Conveyor: each is installed into its own
virtual environment, with a workspace of one trivial job (see BENCHMARKS.md):

    python3 -m venv /tmp/anchors/dagster
    /tmp/anchors/dagster/bin/pip install "dagster==1.13.*" "dagster-webserver==1.13.*"
    python3 -m venv /tmp/anchors/prefect
    /tmp/anchors/prefect/bin/pip install "prefect>=3,<4"

This script needs only the standard library (run it with any Python 3.11):

    .venv/bin/python benchmarks/anchors/dev_start_anchors.py \\
        --dagster /tmp/anchors/dagster --dagster-file /tmp/anchors/dagster_ws/defs.py \\
        --prefect /tmp/anchors/prefect [--runs 5]

``--conveyor-src NAME=DIR`` adds a contender: `conveyor dev` with ``DIR`` (a copy of
``src/``, such as the one before a change) first on PYTHONPATH, to compare a change
with what it changes in the same interleaved session. Omitting ``--dagster`` or
``--prefect`` leaves that anchor out. Prints one JSON line per run and one per
contender (median, min, max, and the ratio of its median to conveyor's), with the
CPU seconds its process group had used when it first answered (median and ratio):
a figure a busy machine blurs less than wall time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
# A start slower than this is a failure, not a figure.
GIVE_UP = 120.0
POLL = 0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Contender:
    """How to start one server in ``home`` on ``port``, and the path to poll."""

    name: str
    path: str
    start: Callable[[Path, int], tuple[list[str], dict[str, str], Path]]


def conveyor(name: str, src: Path | None) -> Contender:
    command = ROOT / ".venv" / "bin" / "conveyor"

    def start(home: Path, port: int) -> tuple[list[str], dict[str, str], Path]:
        env = {**os.environ, "CONVEYOR_HOME": str(home)}
        env.pop("CONVEYOR_DATABASE_URL", None)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        argv = [str(command), "dev", "examples", "--port", str(port)]
        return argv, env, ROOT

    return Contender(name, "/", start)


def dagster(venv: Path, file: Path) -> Contender:
    def start(home: Path, port: int) -> tuple[list[str], dict[str, str], Path]:
        # No telemetry: nothing here reaches the internet, and it would only add noise.
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        argv = [str(venv / "bin" / "dagster"), "dev", "-f", str(file)]
        argv += ["-h", "127.0.0.1", "-p", str(port)]
        return argv, env, file.parent

    return Contender("dagster", "/", start)


def prefect(venv: Path) -> Contender:
    def start(home: Path, port: int) -> tuple[list[str], dict[str, str], Path]:
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
            # As for Dagster: no analytics (no internet here).
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        argv = [str(venv / "bin" / "prefect"), "server", "start"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        return argv, env, home

    return Contender("prefect", "/api/health", start)


def answers(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system, with the children waited for) of the processes in
    process group ``pgid`` now: less at the mercy of a busy machine than wall time."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the whole process group: SIGTERM, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; what it started may not be.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def one_run(contender: Contender) -> tuple[float, float]:
    """Seconds from starting ``contender`` to its first 200, and the CPU seconds its
    processes had used by then."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"w9-{contender.name}-") as tmp:
        home = Path(tmp)
        argv, env, cwd = contender.start(home, port)
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while time.perf_counter() - started < GIVE_UP:
                if answers(port, contender.path):
                    return time.perf_counter() - started, group_cpu(proc.pid)
                if proc.poll() is not None:
                    raise SystemExit(f"{contender.name} exited with code {proc.returncode}")
                time.sleep(POLL)
            raise SystemExit(f"{contender.name} did not answer within {GIVE_UP:g} s")
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dagster", type=Path, help="the virtualenv of dagster-webserver")
    parser.add_argument("--dagster-file", type=Path, help="the Dagster workspace file")
    parser.add_argument("--prefect", type=Path, help="the virtualenv of prefect")
    parser.add_argument(
        "--conveyor-src",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also `conveyor dev` with DIR first on PYTHONPATH, shown as NAME",
    )
    parser.add_argument("--no-warmup", action="store_true")
    args = parser.parse_args()

    contenders = [conveyor("conveyor", None)]
    for spec in args.conveyor_src:
        name, _, src = spec.partition("=")
        contenders.append(conveyor(name, Path(src).resolve()))
    if args.dagster:
        if not args.dagster_file:
            parser.error("--dagster needs --dagster-file")
        contenders.append(dagster(args.dagster, args.dagster_file.resolve()))
    if args.prefect:
        contenders.append(prefect(args.prefect))

    if not args.no_warmup:  # the operating system's file cache, compiled bytecode
        for contender in contenders:
            one_run(contender)
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    cpus: dict[str, list[float]] = {c.name: [] for c in contenders}
    for i in range(args.runs):
        for contender in contenders:
            took, cpu = one_run(contender)
            times[contender.name].append(took)
            cpus[contender.name].append(cpu)
            line = {
                "run": i,
                "contender": contender.name,
                "s": round(took, 3),
                "cpu_s": round(cpu, 2),
            }
            print(json.dumps(line), flush=True)
    base = statistics.median(times["conveyor"])
    base_cpu = statistics.median(cpus["conveyor"])
    load = os.getloadavg()[0]
    for contender in contenders:
        ts = times[contender.name]
        median = statistics.median(ts)
        cpu = statistics.median(cpus[contender.name])
        print(
            json.dumps(
                {
                    "workload": "W9 dev server: start to first 200, interleaved",
                    "contender": contender.name,
                    "path": contender.path,
                    "runs": len(ts),
                    "median_s": round(median, 3),
                    "min_s": round(min(ts), 3),
                    "max_s": round(max(ts), 3),
                    "ratio_to_conveyor": round(median / base, 2),
                    "cpu_median_s": round(cpu, 2),
                    "cpu_ratio_to_conveyor": round(cpu / base_cpu, 2),
                    "load_1m": round(load, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
