from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor import DefinitionError, job, task, workflow
from conveyor.definitions.triggers import Trigger, parse_trigger, parse_triggers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every:5m", Trigger("every", "5m")),
        ("every:90", Trigger("every", "90")),
        ("0 8 * * *", Trigger("schedule", "0 8 * * *")),
        ("@daily", Trigger("schedule", "@daily")),
        ("schedule:*/5 * * * *", Trigger("schedule", "*/5 * * * *")),
        ("once:2026-12-01", Trigger("once", "2026-12-01")),
        ("once:2026-12-01T08:00:00", Trigger("once", "2026-12-01T08:00:00")),
        ("job.success:etl", Trigger("job.success", "etl")),
        ("job.fail:etl", Trigger("job.fail", "etl")),
        ("job.success:etl?partial", Trigger("job.success", "etl", partial=True)),
        ("job.completed: etl ? partial ", Trigger("job.completed", "etl", partial=True)),
        ("webhook:/hooks/x", Trigger("webhook", "/hooks/x")),
        ("tag:nightly", Trigger("tag", "nightly")),
        ("manual", Trigger("manual", "")),
        ("deployment", Trigger("deployment", "")),
        ("http:", Trigger("http", "")),
    ],
)
def test_trigger_grammar(text: str, expected: Trigger) -> None:
    assert parse_trigger(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("sometimes", "expected 'type:expr'"),
        ("cron:0 8 * * *", "unknown type 'cron'"),
        ("every:", "missing expression"),
        ("every:soon", "invalid interval 'soon'"),
        ("every:0", "more than 0"),
        ("61 8 * * *", "not a valid cron"),
        ("schedule:0 25 * * *", "not a valid cron"),
        ("0 0 8 * * *", "not a valid cron"),  # six fields (seconds) are not standard cron
        ("schedule:@fortnightly", "not a valid cron"),
        ("once:tomorrow", "not an ISO date"),
        ("manual:x", "takes no expression"),
        ("job.success:a b", "not a job name"),
        ("job.success:?partial", "'' is not a job name"),
        ("job.success:etl?", "an empty option after '?'; the option is 'partial'"),
        ("job.success:etl?partial,", "an empty option"),
        ("job.fail:etl?full", "unknown option 'full'; the option is 'partial'"),
        ("job.success:etl?partial=true", "unknown option 'partial=true'"),
        ("job.success:etl?partial?partial", "unknown option 'partial?partial'"),
        ("job.completed:etl?partial,partial", "an option is given twice"),
    ],
)
def test_bad_triggers(text: str, fragment: str) -> None:
    with pytest.raises(DefinitionError) as err:
        parse_trigger(text)
    assert str(err.value).startswith(f"Invalid trigger {text!r}")
    assert fragment in str(err.value)


def test_a_chain_on_partial_runs_says_so_in_its_string() -> None:
    @task
    def t() -> None: ...

    @workflow
    def etl() -> None:
        t()

    @job(trigger=[etl.success, f"{etl.fail}?partial"])
    def report() -> None: ...

    whole, partial = report.triggers
    assert (whole.partial, partial.partial) == (False, True)
    assert [str(t) for t in report.triggers] == ["job.success:etl", "job.fail:etl?partial"]
    assert parse_trigger(str(partial)) == partial
    with pytest.raises(DefinitionError, match="triggers itself"):
        parse_triggers(["job.success:j?partial"], "j")


def test_job_trigger_rules() -> None:
    with pytest.raises(DefinitionError, match="at most one schedule"):
        parse_triggers(["every:1h", "0 8 * * *"], "j")
    with pytest.raises(DefinitionError, match="triggers itself"):
        parse_triggers(["job.success:j"], "j")


def test_jobs_give_trigger_strings() -> None:
    @task
    def t() -> None: ...

    @workflow(schedule="0 8 * * 1")
    def etl() -> None:
        t()

    @job(trigger=[etl.success, "every:1h"])
    def report() -> None: ...

    assert etl.success == "job.success:etl"
    assert etl.fail == "job.fail:etl"
    assert etl.completed == ("job.success:etl", "job.fail:etl")
    assert etl.is_fresh == "job.is_fresh:etl"
    assert [str(t) for t in etl.triggers] == ["schedule:0 8 * * 1"]
    assert [str(t) for t in report.triggers] == ["job.success:etl", "every:1h"]


def test_completed_is_a_tuple_accepted_wherever_a_trigger_list_is() -> None:
    """dlt's ``job.completed`` is ``(success, fail)``: alone, unpacked, or inside a list."""

    @job
    def up() -> None: ...

    @job(trigger=up.completed)
    def alone() -> None: ...

    @job(trigger=[*up.completed, "every:1h"])
    def unpacked() -> None: ...

    @job(trigger=[up.completed, up.success])
    def nested() -> None: ...

    @job(trigger="job.completed:up")
    def as_string() -> None: ...

    both = ["job.success:up", "job.fail:up"]
    assert [str(t) for t in alone.triggers] == both
    assert [str(t) for t in unpacked.triggers] == [*both, "every:1h"]
    assert [str(t) for t in nested.triggers] == both  # the repeated success counts once
    assert [str(t) for t in as_string.triggers] == ["job.completed:up"]
    with pytest.raises(DefinitionError, match="triggers itself"):

        @job(name="up", trigger=up.completed)
        def again() -> None: ...


def _attempt(text: str) -> tuple[Trigger | None, str | None]:
    """Parse, returning the trigger or the error's message: nothing else may escape."""
    try:
        return parse_trigger(text), None
    except DefinitionError as e:
        return None, str(e)


KINDS = {
    "schedule",
    "every",
    "once",
    "webhook",
    "tag",
    "job.success",
    "job.fail",
    "job.completed",
    "manual",
    "deployment",
    "http",
}


@given(st.text(max_size=40))
def test_any_text_is_a_trigger_or_a_definition_error(text: str) -> None:
    parsed, error = _attempt(text)
    if error is not None:
        assert error.startswith("Invalid trigger")
    else:
        assert parsed is not None
        assert parsed.type in KINDS


@given(
    st.sampled_from(["every:", "schedule:", "once:", "job.success:", "tag:"]), st.text(max_size=20)
)
def test_typed_triggers_with_any_expression(prefix: str, expr: str) -> None:
    parsed, error = _attempt(prefix + expr)
    assert (parsed is None) != (error is None)
    if error is not None:
        assert error.startswith("Invalid trigger")
