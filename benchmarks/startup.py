"""W5: start-up cost a user feels on every command.

.venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import emit, median_time

BIN = Path(sys.executable).parent


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> None:
    baseline = median_time(lambda: run(sys.executable, "-c", "pass"), 9)
    emit(workload="W5 python -c pass (baseline)", seconds=round(baseline, 3))
    imp = median_time(lambda: run(sys.executable, "-c", "import conveyor"), 9)
    emit(
        workload="W5 python -c 'import conveyor'",
        seconds=round(imp, 3),
        over_baseline_s=round(imp - baseline, 3),
    )
    helped = median_time(lambda: run(str(BIN / "conveyor"), "--help"), 9)
    emit(
        workload="W5 conveyor --help",
        seconds=round(helped, 3),
        over_baseline_s=round(helped - baseline, 3),
    )


if __name__ == "__main__":
    main()
