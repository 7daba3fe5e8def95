"""Pages and the API list the latest keys of a time-partitioned job, not every hour since
its start (an hourly set from 2020 holds more than 60,000 keys)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import DailyPartitions, HourlyPartitions, MultiPartitions, StaticPartitions
from conveyor.definitions.partitions import SHOWN_KEYS, partition_label, shown_keys
from tests.server.test_api import Api, make_api

WORKSPACE = """
from conveyor import HourlyPartitions, StaticPartitions, task, workflow


@task
def step() -> int:
    return 1


@workflow(partitions=HourlyPartitions(start="2020-01-01", timezone="Europe/Paris"))
def hourly():
    step()


@workflow(partitions=StaticPartitions(["us", "eu"]))
def regional():
    step()
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, WORKSPACE)


def test_the_api_lists_the_latest_keys_of_a_time_set(api: Api) -> None:
    job = api.get("/api/jobs/hourly")
    keys = job["partitions"]
    assert len(keys) == SHOWN_KEYS
    every = HourlyPartitions(start="2020-01-01", timezone="Europe/Paris")
    assert keys == list(every)[-SHOWN_KEYS:]
    assert job["partitions_label"] == (
        "HourlyPartitions(start='2020-01-01', timezone='Europe/Paris')"
    )
    static = api.get("/api/jobs/regional")
    assert static["partitions"] == ["us", "eu"]
    assert static["partitions_label"] is None


def test_the_pages_show_the_latest_keys(api: Api) -> None:
    latest = HourlyPartitions(start="2020-01-01", timezone="Europe/Paris").latest(1)[0]
    page = api.client.get("/jobs/hourly")
    assert page.status_code == 200
    assert "HourlyPartitions(start=&#39;2020-01-01&#39;" in page.text
    assert latest in page.text
    launchpad = api.client.get("/jobs/hourly/launch")
    assert launchpad.status_code == 200
    assert launchpad.text.count('<option value="20') == SHOWN_KEYS
    assert f"the latest {SHOWN_KEYS} shown" in launchpad.text
    backfills = api.client.get("/backfills", params={"job": "hourly"})
    assert backfills.status_code == 200
    assert backfills.text.count('name="partition" value="') == SHOWN_KEYS


def test_latest_counts_back_across_clock_changes() -> None:
    paris = HourlyPartitions(start="2026-03-28", timezone="Europe/Paris", end="2026-03-31")
    assert paris.latest(30) == list(paris)[-30:]  # 2026-03-29 02:00 does not exist there
    assert paris.latest(10_000) == list(paris)
    assert paris.latest(0) == []
    daily = DailyPartitions(start="2026-01-01", end="2026-01-05")
    assert daily.latest(2) == ["2026-01-03", "2026-01-04"]
    both = MultiPartitions({"date": daily, "region": StaticPartitions(["us", "eu"])})
    assert both.latest(3) == list(both)[-3:]
    assert shown_keys(StaticPartitions([f"k{i}" for i in range(600)])) == [
        f"k{i}" for i in range(600)
    ]
    assert shown_keys(None) is None
    assert partition_label(StaticPartitions(["a"])) == "1 key"
