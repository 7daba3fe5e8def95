"""A sensor: a run for each new file that lands in a folder.

`landed_files` looks in CONVEYOR_HOME/landing (`.conveyor/landing` under
`make run`) every 15 seconds, and asks for one run of `load_landed` per new
`.csv` file there; a file's name is its run key, so each file runs once.
Try it: `mkdir -p .conveyor/landing && touch .conveyor/landing/prices.csv`.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor import RunContext, RunRequest, SensorContext, job, sensor


def landing() -> Path:
    return Path(os.environ.get("CONVEYOR_HOME", "~/.conveyor")).expanduser() / "landing"


@job
def load_landed(context: RunContext) -> str:
    """Load the file the sensor saw (its name is in the run's tags)."""
    name = context.tags.get("file", "")
    size = (landing() / name).stat().st_size if (landing() / name).is_file() else 0
    context.log.info("loading %s (%d bytes)", name, size)
    return f"loaded {name}"


@sensor(job=load_landed, interval="15s")
def landed_files(context: SensorContext) -> list[RunRequest]:
    """One run per .csv file in the landing folder, once each."""
    folder = landing()
    files = sorted(p.name for p in folder.glob("*.csv")) if folder.is_dir() else []
    return [RunRequest(run_key=name, tags={"file": name}) for name in files]
