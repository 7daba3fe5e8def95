"""Results are signed with the instance's key and refused, never unpickled, when the
signature does not match: altered bytes, another instance's key, or no signature."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest
from sqlalchemy import update

from conveyor.errors import StorageError
from conveyor.storage.blobs import DirectoryBlobStore
from conveyor.storage.instance import Instance
from conveyor.storage.results import ResultSignatureError
from conveyor.storage.schema import results
from conveyor.storage.secrets import SecretKeyError


class Boom:
    """Unpickling it would run code: it must never be unpickled."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, ("raise SystemExit('unpickled!')",))


def stored(instance: Instance, run_id: str, key: str, value: object) -> dict[str, object]:
    """Store ``value`` as run ``run_id``'s (made if missing) result of ``key``."""
    if not instance.runs("j"):
        instance.run_store.create(job_name="j", job_version="v", run_id=run_id)
    pointer = instance.result_store.put(run_id, key, value)
    with instance.db.write() as conn:
        instance.result_store.write(conn, [pointer])
    return pointer


def set_data(instance: Instance, run_id: str, key: str, data: bytes) -> None:
    with instance.db.write() as conn:
        conn.execute(
            update(results)
            .where(results.c.run_id == run_id, results.c.task_key == key)
            .values(data=data)
        )


def test_inline_and_blob_results_are_signed_and_read_back(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    stored(instance, "run-1", "small", {"a": 1})
    stored(instance, "run-1", "large", b"x" * 100_000)
    assert instance.result_store.get("run-1", "small") == {"a": 1}
    assert instance.result_store.get("run-1", "large") == b"x" * 100_000
    blob = DirectoryBlobStore(tmp_path / "home").get("results/run-1/large.pkl")
    assert blob.startswith(b"conveyor-result-1 ")
    # The key was made on first use, private to the user.
    key_file = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    instance.close()


def test_an_altered_inline_result_is_refused(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    pointer = stored(instance, "run-1", "t", 41)
    data = bytes(pointer["data"])  # type: ignore[arg-type]
    set_data(instance, "run-1", "t", data.replace(pickle.dumps(41)[-3:], pickle.dumps(42)[-3:]))
    with pytest.raises(
        ResultSignatureError,
        match=r"the result of task 't' of run run-1 was altered or written by another instance: "
        r"refusing to unpickle it",
    ):
        instance.result_store.get("run-1", "t")
    instance.close()


def test_an_altered_blob_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    stored(instance, "run-1", "big", b"y" * 100_000)
    blobs = DirectoryBlobStore(tmp_path / "home")
    header = blobs.get("results/run-1/big.pkl").split(b"\n", 1)[0]
    # A valid-looking header in front of a pickle that runs code.
    blobs.put("results/run-1/big.pkl", header + b"\n" + pickle.dumps(Boom()))
    with pytest.raises(ResultSignatureError, match="task 'big' of run run-1 was altered"):
        instance.result_store.get("run-1", "big")
    instance.close()


def test_an_unsigned_result_is_refused(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    stored(instance, "run-1", "old", 1)
    set_data(instance, "run-1", "old", pickle.dumps(Boom()))
    with pytest.raises(
        ResultSignatureError,
        match=r"task 'old' of run run-1 is not signed \(altered, or stored by a Conveyor from "
        r"before results were signed\): refusing to unpickle it; rerun the task",
    ):
        instance.result_store.get("run-1", "old")
    instance.close()


def test_a_result_signed_with_another_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("CONVEYOR_SECRET_KEY", Fernet.generate_key().decode())
    instance = Instance.at(tmp_path / "home")
    stored(instance, "run-1", "t", "value")
    assert instance.result_store.get("run-1", "t") == "value"
    assert not (tmp_path / "home" / "secret.key").exists()  # the variable's key was used
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(ResultSignatureError, match=r"CONVEYOR_SECRET_KEY or the file secret\.key"):
        instance.result_store.get("run-1", "t")
    instance.close()


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    instance = Instance.at(tmp_path / "home")
    stored(instance, "run-1", "t", 1)
    instance.close()
    (tmp_path / "home" / "secret.key").chmod(0o644)
    again = Instance.at(tmp_path / "home")
    with pytest.raises(SecretKeyError, match="chmod 600"):
        again.result_store.get("run-1", "t")
    again.close()


def test_an_instance_in_memory_signs_with_a_key_of_its_own() -> None:
    one, two = Instance.ephemeral(), Instance.ephemeral()
    pointer = one.result_store.put("run-1", "t", [1, 2])
    assert one.result_store.load(pointer) == [1, 2]
    with pytest.raises(ResultSignatureError):
        two.result_store.load(pointer)
    with pytest.raises(StorageError):  # the family callers catch
        two.result_store.load(pointer)
    one.close()
    two.close()
