"""The blob store by URL (``CONVEYOR_BLOB_URL``): fsspec on ``file://``, ``memory://`` and a
real S3 server (moto's server mode on loopback), with the errors of bad URLs."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, NotFoundError, StorageError
from conveyor.storage.blob_url import FsspecBlobStore, blob_options, blob_store_from_env
from conveyor.storage.blobs import DirectoryBlobStore
from conveyor.storage.instance import Instance
from conveyor.storage.results import ResultSignatureError
from tests.s3_server import S3Server, s3_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.make_bucket(name)
    return name


def s3_store(s3: S3Server, bucket: str) -> FsspecBlobStore:
    return FsspecBlobStore(f"s3://{bucket}/pre", s3_options(s3))


def s3_options(s3: S3Server) -> dict[str, object]:
    return {
        "endpoint_url": s3.endpoint,
        "key": "testing",
        "secret": "testing",
        "skip_instance_cache": True,
    }


def check_contract(store: FsspecBlobStore) -> None:
    """What every blob store does: put whole, get, list below a folder, remove."""
    assert store.put("results/run-1/a.pkl", b"a" * 100_000) == "results/run-1/a.pkl"
    store.put("results/run-1/b%5B0%5D.pkl", b"b")
    store.put("logs/run-1/a.1.out", b"log")
    assert store.get("results/run-1/a.pkl") == b"a" * 100_000
    store.put("results/run-1/a.pkl", b"replaced")
    assert store.get("results/run-1/a.pkl") == b"replaced"
    assert store.under("results/run-1") == ["results/run-1/a.pkl", "results/run-1/b%5B0%5D.pkl"]
    assert store.under("results/run-2") == []
    assert store.remove("results/run-1/a.pkl") == len(b"replaced")
    assert store.remove("results/run-1/a.pkl") is None
    with pytest.raises(NotFoundError, match=r"results/run-1/a.pkl is missing"):
        store.get("results/run-1/a.pkl")
    with pytest.raises(StorageError, match="must be relative"):
        store.put("../outside", b"x")


def test_a_folder_by_file_url(tmp_path: Path) -> None:
    store = FsspecBlobStore(f"file://{tmp_path}/blobs")
    check_contract(store)
    # Written through a temporary name, renamed into place: nothing else is left.
    left = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert left == ["a.1.out", "b%5B0%5D.pkl"]
    # The same bytes where the home's folder store would have them.
    assert DirectoryBlobStore(tmp_path / "blobs").get("logs/run-1/a.1.out") == b"log"


def test_memory_url() -> None:
    check_contract(FsspecBlobStore(f"memory://conveyor-test-{uuid.uuid4().hex}/prefix"))


def test_s3(s3: S3Server, bucket: str) -> None:
    store = s3_store(s3, bucket)
    assert store.atomic_put
    check_contract(store)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://bucket/x", r"'nosuch://bucket/x': Protocol not known: nosuch; use s3://"),
        ("bucket/prefix", r"'bucket/prefix' has no scheme; give one such as s3://"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FsspecBlobStore(url)


def test_a_url_whose_package_is_missing_names_it() -> None:
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(ConfigError, match=r"'gs://bucket/x' needs gcsfs \(pip install gcsfs\)"):
        FsspecBlobStore("gs://bucket/x")


def test_an_unreachable_endpoint_is_a_storage_error_naming_the_store() -> None:
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "key": "k",
        "secret": "s",
        "skip_instance_cache": True,
        "retries": 1,
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
    }
    store = FsspecBlobStore("s3://bucket/pre", options)
    with pytest.raises(StorageError, match=r"cannot write x.pkl in the blob store s3://bucket/pre"):
        store.put("x.pkl", b"x")
    with pytest.raises(StorageError, match=r"cannot read x.pkl .* check that the store is reach"):
        store.get("x.pkl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "CONVEYOR_BLOB_OPTIONS is not JSON"),
        ('["a"]', "CONVEYOR_BLOB_OPTIONS must be a JSON object .*not list"),
    ],
)
def test_bad_options(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        blob_options(text)


def test_options_and_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert blob_store_from_env() is None
    monkeypatch.setenv("CONVEYOR_BLOB_URL", " ")
    with pytest.raises(ConfigError, match="CONVEYOR_BLOB_URL is set but empty"):
        blob_store_from_env()
    monkeypatch.setenv("CONVEYOR_BLOB_URL", "memory://from-env/x")
    monkeypatch.setenv("CONVEYOR_BLOB_OPTIONS", json.dumps({"skip_instance_cache": True}))
    store = blob_store_from_env()
    assert store is not None
    assert store.url == "memory://from-env/x"


def test_an_instance_keeps_signed_results_in_s3(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.env(bucket).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    instance = Instance.from_env()
    try:
        assert isinstance(instance.blobs, FsspecBlobStore)
        pointer = instance.result_store.put("run-1", "big", b"r" * 200_000)
        assert pointer["uri"] == "results/run-1/big.pkl"
        raw = s3_store(s3, bucket).fs.cat_file(f"{bucket}/conveyor/results/run-1/big.pkl")
        assert raw.startswith(b"conveyor-result-1 ")
        assert instance.result_store.load(pointer) == b"r" * 200_000
        # Nothing of the result is in the home.
        assert not (tmp_path / "home" / "results").exists()
        # Altered in S3: refused, never unpickled.
        s3_store(s3, bucket).fs.pipe_file(
            f"{bucket}/conveyor/results/run-1/big.pkl", raw.replace(b"rrrr", b"rrrx", 1)
        )
        with pytest.raises(
            ResultSignatureError,
            match=r"result of task 'big' of run run-1 was altered or written by another instance",
        ):
            instance.result_store.load(pointer)
    finally:
        instance.close()
