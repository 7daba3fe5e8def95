"""Lists and counts of runs for the UI and the API: filters, keyset pages, bad cursors, on
SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest

from conveyor.errors import ConfigError
from conveyor.storage.instance import Instance
from conveyor.storage.run_queries import RunFilter, decode_cursor, encode_cursor
from conveyor.storage.runs import RunStore
from conveyor.storage.schema import runs
from conveyor.storage.states import RunStatus


def add_run(
    inst: Instance,
    rid: str,
    created: float,
    *,
    job: str = "etl",
    status: str = "success",
    tags: dict[str, str] | None = None,
    trigger: str = "manual",
    started: float | None = None,
) -> None:
    row = RunStore.new_row(
        rid, status=RunStatus.QUEUED, now=created, job_name=job, job_version="v1", tags=tags
    )
    row.update(status=status, trigger=trigger, started_at=started)
    with inst.db.write() as conn:
        conn.execute(runs.insert(), row)


@pytest.fixture
def seeded(durable: Instance) -> Instance:
    """Twelve runs, r00 (oldest) to r11, of two jobs; r04 and r05 share a creation time."""
    for n in range(12):
        add_run(
            durable,
            f"r{n:02d}",
            1000.0 + (n if n != 5 else 4),
            job="etl" if n % 2 == 0 else "report",
            status=["success", "failure", "queued"][n % 3],
            tags={"team": "a" if n < 6 else "b", **({"env": "prod"} if n % 4 == 0 else {})},
            trigger="every:1h" if n % 3 == 0 else "manual",
            started=None if n % 3 == 2 else 2000.0 + n,
        )
    return durable


def ids(inst: Instance, f: RunFilter, limit: int = 50) -> list[str]:
    return [r.id for r in inst.query_runs(f, limit=limit).runs]


def test_pages_go_newest_first_by_key_without_gaps_or_repeats(seeded: Instance) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = seeded.query_runs(RunFilter(), limit=5, cursor=cursor)
        seen += [r.id for r in page.runs]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # r04 and r05 were created at the same instant: the id breaks the tie
    assert seen == [f"r{n:02d}" for n in (11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)]
    assert pages == 3
    # a page that ends exactly at the last run says there is no next one
    last = seeded.query_runs(RunFilter(), limit=12)
    assert len(last.runs) == 12
    assert last.next_cursor is None


def test_each_filter_and_their_combination(seeded: Instance) -> None:
    assert ids(seeded, RunFilter(job_names=("report",))) == [
        "r11",
        "r09",
        "r07",
        "r05",
        "r03",
        "r01",
    ]
    assert ids(seeded, RunFilter(job_names=("report", "etl"), statuses=("queued",))) == [
        "r11",
        "r08",
        "r05",
        "r02",
    ]
    assert ids(seeded, RunFilter(statuses=("success", "failure"), job_names=("etl",))) == [
        "r10",
        "r06",
        "r04",
        "r00",
    ]
    assert ids(seeded, RunFilter(tags=(("team", "b"),))) == [
        "r11",
        "r10",
        "r09",
        "r08",
        "r07",
        "r06",
    ]
    assert ids(seeded, RunFilter(tags=(("team", "b"), ("env", "prod")))) == ["r08"]
    assert ids(seeded, RunFilter(tags=(("env", "dev"),))) == []
    assert ids(seeded, RunFilter(trigger="every:1h")) == ["r09", "r06", "r03", "r00"]
    assert ids(seeded, RunFilter(created_after=1009.0)) == ["r11", "r10", "r09"]
    assert ids(seeded, RunFilter(created_after=1003.0, created_before=1005.0)) == [
        "r05",
        "r04",
        "r03",
    ]
    # runs that have not started have no start time, and no start time is in a range
    assert ids(seeded, RunFilter(started_after=2006.0, started_before=2010.0)) == [
        "r09",
        "r07",
        "r06",
    ]
    both = RunFilter(job_names=("etl",), tags=(("team", "a"),), started_after=2000.0)
    assert ids(seeded, both) == ["r04", "r00"]


def test_a_tag_key_with_quotes_and_dots_matches_exactly(durable: Instance) -> None:
    add_run(durable, "q1", 1.0, tags={'say "hi"': "x", "a.b": "y"})
    add_run(durable, "q2", 2.0, tags={"a": "y"})
    assert ids(durable, RunFilter(tags=(('say "hi"', "x"),))) == ["q1"]
    assert ids(durable, RunFilter(tags=(("a.b", "y"),))) == ["q1"]
    assert ids(durable, RunFilter(tags=(("a", "y"),))) == ["q2"]


def test_pages_of_a_filter_keep_to_it(seeded: Instance) -> None:
    f = RunFilter(job_names=("etl",))
    first = seeded.query_runs(f, limit=4)
    assert [r.id for r in first.runs] == ["r10", "r08", "r06", "r04"]
    assert first.next_cursor is not None
    rest = seeded.query_runs(f, limit=4, cursor=first.next_cursor)
    assert [r.id for r in rest.runs] == ["r02", "r00"]
    assert rest.next_cursor is None


def test_status_counts_follow_the_filter(seeded: Instance) -> None:
    everything = seeded.run_status_counts(RunFilter())
    assert everything == {
        "queued": 4,
        "starting": 0,
        "running": 0,
        "success": 4,
        "failure": 4,
        "canceling": 0,
        "canceled": 0,
    }
    assert seeded.run_status_counts(RunFilter(job_names=("etl",), statuses=("queued",))) == {
        "queued": 2
    }
    assert seeded.run_status_counts(RunFilter(tags=(("env", "prod"),)))["success"] == 1


def test_an_empty_instance_has_an_empty_last_page(durable: Instance) -> None:
    page = durable.query_runs(RunFilter())
    assert (page.runs, page.next_cursor) == ([], None)
    assert sum(durable.run_status_counts(RunFilter()).values()) == 0


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1.5]").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["x", "r1"]').decode(),
        base64.urlsafe_b64encode(b'[1.5, ""]').decode(),
        "x" * 500,
    ],
)
def test_a_bad_cursor_is_a_config_error(instance: Instance, cursor: str) -> None:
    with pytest.raises(ConfigError, match="is not a cursor of a list of runs"):
        instance.query_runs(RunFilter(), cursor=cursor)


def test_bad_filters_and_limits_are_config_errors(instance: Instance) -> None:
    with pytest.raises(ConfigError, match="status 'done': must be one of"):
        instance.query_runs(RunFilter(statuses=("done",)))
    with pytest.raises(ConfigError, match="status 'done'"):
        instance.run_status_counts(RunFilter(statuses=("done",)))
    with pytest.raises(ConfigError, match="limit=0"):
        instance.query_runs(RunFilter(), limit=0)
    with pytest.raises(ConfigError, match="limit=5000"):
        instance.query_runs(RunFilter(), limit=5000)
    with pytest.raises(ConfigError, match="give each tag as a"):
        instance.query_runs(RunFilter(tags=(("k",),)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="created_after"):
        instance.query_runs(RunFilter(created_after=float("nan")))
    with pytest.raises(ConfigError, match="give a tuple of names"):
        instance.query_runs(RunFilter(job_names="etl"))  # type: ignore[arg-type]


def test_a_cursor_round_trips_its_key_exactly() -> None:
    key = (1764500000.123456789, "0123456789abcdef0123456789abcdef")
    assert decode_cursor(encode_cursor(*key)) == key


def test_pages_of_several_jobs_merge_them_newest_first(seeded: Instance) -> None:
    add_run(seeded, "z1", 1003.5, job="third")
    f = RunFilter(job_names=("third", "report", "etl", "report"), statuses=("success", "queued"))
    seen: list[str] = []
    cursor = None
    while True:
        page = seeded.query_runs(f, limit=3, cursor=cursor)
        assert len(page.runs) <= 3
        seen += [r.id for r in page.runs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["r11", "r09", "r08", "r06", "r05", "z1", "r03", "r02", "r00"]
    assert seeded.run_status_counts(f) == {"success": 5, "queued": 4}
