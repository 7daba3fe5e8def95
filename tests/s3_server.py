"""A real S3 server on loopback for tests: moto's server mode, in a process of its own.

``s3_server()`` starts ``moto_server`` on 127.0.0.1 with port 0, reads the port
it reports, and stops it (and waits for it) when the block ends. Where moto is
not installed the test is skipped and says how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.waiting import wait_until

_RUNNING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str
    pid: int

    def env(self, bucket: str, prefix: str = "conveyor") -> dict[str, str]:
        """The variables that point an instance's blob store at ``bucket`` on this server."""
        return {
            "CONVEYOR_BLOB_URL": f"s3://{bucket}/{prefix}",
            "CONVEYOR_BLOB_OPTIONS": f'{{"endpoint_url": "{self.endpoint}"}}',
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def make_bucket(self, bucket: str) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(
            key="testing", secret="testing", endpoint_url=self.endpoint, skip_instance_cache=True
        )
        fs.mkdir(bucket)


@contextmanager
def s3_server(log_dir: Path) -> Iterator[S3Server]:
    """A moto S3 server on a free loopback port, for the block's duration."""
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        pytest.skip("moto is not installed: pip install 'moto[server]' (in conveyor[dev])")
    log = log_dir / "moto.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:

        def reported() -> re.Match[str] | None:
            text = log.read_text(errors="replace")
            if process.poll() is not None:
                raise AssertionError(f"moto_server exited ({process.returncode}): {text}")
            return _RUNNING.search(text)

        found = wait_until(reported, 30, "moto's S3 server to report its address")
        yield S3Server(found.group(1), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
