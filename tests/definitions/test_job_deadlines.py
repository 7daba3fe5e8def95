"""``fail_after=`` and ``expire_after=`` of ``@workflow`` and ``@job``: parsed, and refused
with the reason when they are not durations above zero."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import job, task, workflow
from conveyor.definitions.deadlines import deadline_text
from conveyor.errors import DefinitionError


@task
def one() -> int:
    return 1


def _workflow(**options: Any) -> Any:
    @workflow(**options)
    def flow() -> None:
        one()

    return flow


def _job(**options: Any) -> Any:
    @job(**options)
    def body() -> None:
        pass

    return body


@pytest.mark.parametrize("make", [_workflow, _job])
def test_durations_are_read_as_seconds(make: Any) -> None:
    made = make(fail_after="2h", expire_after="30m")
    assert made.fail_after == 7200.0
    assert made.expire_after == 1800.0
    assert made.options.fail_after == 7200.0


@pytest.mark.parametrize("make", [_workflow, _job])
def test_numbers_are_seconds_and_both_default_to_no_limit(make: Any) -> None:
    made = make(fail_after=90, expire_after=1.5)
    assert (made.fail_after, made.expire_after) == (90.0, 1.5)
    plain = make()
    assert (plain.fail_after, plain.expire_after) == (None, None)


@pytest.mark.parametrize("option", ["fail_after", "expire_after"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("soon", "cannot read 'soon'"),
        ("2 hours later", "cannot read"),
        ("5x", "unknown unit 'x'"),
        ("", "empty"),
        (-5, ">= 0"),
        (0, "above zero"),
        ("0s", "above zero"),
        (True, "expected seconds"),
        ([1], "expected seconds"),
        (float("inf"), "finite"),
    ],
)
def test_bad_durations_are_refused_naming_the_job_and_option(
    option: str, value: object, says: str
) -> None:
    with pytest.raises(DefinitionError) as raised:
        _workflow(**{option: value})
    message = str(raised.value)
    assert message.startswith("@workflow 'flow': ")
    assert option in message
    assert says in message


def test_a_job_made_with_to_job_keeps_or_replaces_them() -> None:
    flow = _workflow(fail_after="1h")
    assert flow.to_job(name="variant").fail_after == 3600.0
    assert flow.to_job(name="short", fail_after="5m").fail_after == 300.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1800, "30m"), (7200, "2h"), (5400, "1h30m"), (90, "1m30s"), (1.5, "1.5s"), (86400, "1d")],
)
def test_deadlines_are_written_back_as_users_write_them(seconds: float, text: str) -> None:
    assert deadline_text(seconds) == text
