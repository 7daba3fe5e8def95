"""Several processes writing one SQLite file at once never see "database is locked"."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from conveyor.storage.instance import Instance
from conveyor.storage.states import RunStatus, TaskStatus

WRITERS = 4
RUNS_EACH = 40


def _writer(home: str, n: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        inst = Instance.at(home)
        for i in range(RUNS_EACH):
            run = inst.run_store.create(job_name=f"w{n}", job_version="v")
            inst.run_store.set_status(run.id, RunStatus.RUNNING)
            rec = inst.recorder(run.id)
            for t in range(20):
                rec.task(f"t{t}", 1, TaskStatus.RUNNING)
                rec.task(f"t{t}", 1, TaskStatus.SUCCESS)
            if i % 5 == 0:
                rec.flush()
            rec.close(run_status=RunStatus.SUCCESS)
        inst.close()
    except BaseException as e:
        errors.put(f"writer {n}: {type(e).__name__}: {e}")


def test_concurrent_writers_and_a_fresh_database(tmp_path: Path) -> None:
    # The database does not exist yet: the writers also race to create it.
    home = str(tmp_path / "shared")
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(home, n, errors)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=90)
    for p in procs:
        if p.is_alive():
            p.kill()
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert all(p.exitcode == 0 for p in procs)
    inst = Instance.at(home)
    assert inst.run_store.count() == WRITERS * RUNS_EACH
    runs = inst.runs(limit=WRITERS * RUNS_EACH)
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    assert all(len(inst.run_details(r.id).tasks) == 20 for r in runs[:10])
    inst.close()
