"""Acceptance 7 of issue 15: the blob store on S3 (moto's server on loopback), a workflow on
two Dask workers with homes of their own passing a 1 MB result, a rerun that reuses it from
S3, and a result altered by hand in S3 refused, not unpickled."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Instance, RunStatus, TaskStatus, task, workflow
from conveyor.execution.executors.dask import DaskExecutor
from conveyor.storage.blob_url import FsspecBlobStore
from conveyor.storage.results import ResultSignatureError
from tests.s3_server import S3Server, s3_server
from tests.waiting import wait_until

MB = 1024 * 1024
GATE = "CONVEYOR_TEST_GATE"


@task
def make() -> bytes:
    return bytes(range(256)) * (MB // 256)


@task
def check(data: bytes) -> dict[str, object]:
    """What the worker received, and where it ran; fails until the test opens the gate."""
    seen = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "home": os.environ["CONVEYOR_HOME"],
    }
    if not Path(os.environ[GATE]).exists():
        raise RuntimeError(f"gate closed; received {seen}")
    return seen


@workflow
def passes_a_megabyte() -> None:
    check(make())


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, s3: S3Server
) -> Iterator[tuple[DaskExecutor, list[Path], Path]]:
    """A Dask scheduler and two worker processes, each with a CONVEYOR_HOME of its own (as
    on two machines); yields the executor, the workers' homes and the gate file."""
    from distributed import LocalCluster

    root = tmp_path_factory.mktemp("dask")
    gate = root / "gate"
    scheduler = LocalCluster(n_workers=0, dashboard_address=":0", processes=True)
    dask_cli = Path(sys.executable).parent / "dask"
    repo = Path(__file__).parents[3]
    homes = [root / f"worker-{i}" for i in range(2)]
    workers = []
    for home in homes:
        home.mkdir()
        env = {
            **os.environ,
            # As on a real cluster, the job's code must be importable where the worker runs.
            "PYTHONPATH": os.pathsep.join([str(repo), *sys.path]),
            "HOME": str(home),
            "CONVEYOR_HOME": str(home),
            GATE: str(gate),
        }
        workers.append(
            subprocess.Popen(
                [
                    str(dask_cli),
                    "worker",
                    scheduler.scheduler_address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
    executor = DaskExecutor(address=scheduler.scheduler_address)
    try:
        wait_until(
            lambda: len(executor.client.scheduler_info()["workers"]) >= 2,
            60,
            "both Dask workers to join",
            every=0.2,
        )
        yield executor, homes, gate
    finally:
        executor.close()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
        scheduler.close()


@pytest.fixture
def on_s3(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Instance, FsspecBlobStore]]:
    """The run's instance (its own home) with its blobs in a new bucket on the S3 server,
    and a store on that bucket to look at (and alter) the objects by hand."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.make_bucket(bucket)
    for name, value in s3.env(bucket).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "run-home"))
    instance = Instance.from_env()
    by_hand = FsspecBlobStore(
        f"s3://{bucket}/conveyor",
        {"endpoint_url": s3.endpoint, "key": "testing", "secret": "testing"},
    )
    yield instance, by_hand
    instance.close()


@pytest.mark.slow
def test_a_megabyte_through_s3_between_dask_workers_with_their_own_homes(
    cluster: tuple[DaskExecutor, list[Path], Path],
    on_s3: tuple[Instance, FsspecBlobStore],
    tmp_path: Path,
) -> None:
    executor, homes, gate = cluster
    instance, by_hand = on_s3
    expected = hashlib.sha256(make.fn()).hexdigest()

    first = passes_a_megabyte.run(executor=executor, instance=instance, raise_on_error=False)
    assert first.status is RunStatus.FAILURE
    # The worker got the whole megabyte before the closed gate failed it.
    assert f"'size': {MB}, 'sha256': '{expected}'" in str(first.failures["check"])
    pointer = instance.result_store.pointers(first.run_id)["make"]
    uri = f"results/{first.run_id}/make.pkl"
    assert pointer["uri"] == uri
    assert pointer["size"] > MB
    assert by_hand.under(f"results/{first.run_id}") == [uri]
    assert not (tmp_path / "run-home" / "results").exists()  # in S3, not in the run's home

    gate.touch()
    second = passes_a_megabyte.rerun(first.run_id, executor=executor, instance=instance)
    assert second.status is RunStatus.SUCCESS
    statuses = {t.key: t.status for t in second.details().tasks}
    assert statuses == {"make": TaskStatus.REUSED, "check": TaskStatus.SUCCESS}
    seen = second.output("check")
    assert seen["size"] == MB
    assert seen["sha256"] == expected
    assert seen["home"] in {str(h) for h in homes}  # a worker's home, not the run's
    # The rerun points at the same object in S3: nothing was written again.
    assert instance.result_store.pointers(second.run_id)["make"]["uri"] == uri
    assert by_hand.under(f"results/{second.run_id}") == []

    # Altered by hand in S3: the signature no longer matches, and it is not unpickled.
    data = bytearray(by_hand.get(uri))
    data[-100] ^= 0xFF
    by_hand.put(uri, bytes(data))
    refused = f"result of task 'make' of run {first.run_id} was altered or written by another"
    with pytest.raises(ResultSignatureError, match=f"{refused} instance: refusing to unpickle"):
        passes_a_megabyte.rerun(first.run_id, executor=executor, instance=instance)
    # The refused rerun's run is ended, not left running.
    statuses = [r.status for r in passes_a_megabyte.runs(instance=instance)]
    assert sorted(statuses) == sorted([RunStatus.FAILURE, RunStatus.SUCCESS, RunStatus.FAILURE])
