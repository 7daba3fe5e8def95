"""Dagster's job ``metadata=``, ``owners=`` and ``run_tags=``: checked at definition time,
kept on the job and in its manifest, and (``run_tags``) copied onto its runs in place of
``tags``, with tags given when a run starts winning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor import DefinitionError, Instance, job, task, workflow


@task
def my_op() -> str:
    return "result"


def tagged() -> None:
    my_op()


def test_metadata_owners_and_tags_are_kept_and_in_the_manifest() -> None:
    flow = workflow(
        tags={"team": "data-platform", "priority": "high"},
        metadata={
            "owner": "data-team@company.com",
            "slack_channel": "https://slack.com/archives/C123",
            "rows": 1200,
            "ratio": 0.5,
            "public": False,
            "notes": None,
        },
        owners=["team:data-platform", "alice@company.com", "bob", "team:data-platform"],
    )(tagged)
    assert flow.metadata["slack_channel"] == "https://slack.com/archives/C123"
    assert flow.owners == ("team:data-platform", "alice@company.com", "bob")
    assert flow.run_tags == {"team": "data-platform", "priority": "high"}
    manifest = flow.to_job_definition()
    assert json.loads(json.dumps(manifest)) == manifest
    assert manifest["metadata"]["rows"] == 1200
    assert manifest["owners"] == ["team:data-platform", "alice@company.com", "bob"]
    assert manifest["run_tags"] == manifest["tags"]


def test_a_job_without_them_has_empty_ones() -> None:
    flow = workflow(tagged)
    assert (flow.metadata, flow.owners, flow.run_tags) == ({}, (), {})
    assert flow.to_job_definition()["owners"] == []


def test_variants_keep_metadata_and_owners_unless_given() -> None:
    flow = workflow(metadata={"docs": "https://x.test"}, owners=["team:a"])(tagged)
    same = flow.to_job(name="tagged_prod")
    assert same.metadata == {"docs": "https://x.test"}
    assert same.owners == ("team:a",)
    other = flow.to_job(name="tagged_b", owners=["team:b"])
    assert other.owners == ("team:b",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metadata": ["a"]}, r"metadata= must be a dict"),
        ({"metadata": {1: "x"}}, r"metadata keys must be non-empty strings, got 1"),
        ({"metadata": {"": "x"}}, r"metadata keys must be non-empty strings"),
        (
            {"metadata": {"link": {"url": "https://x"}}},
            r"metadata\['link'\]=.* must be a str, int, float, bool or None; give a link as "
            r"a string starting with https://",
        ),
        ({"owners": "team:data"}, r"owners= must be a list such as"),
        ({"owners": [""]}, r"owner '' must be a team \('team:data-platform'\)"),
        ({"owners": ["team:"]}, r"owner 'team:' must be a team"),
        ({"owners": ["two words"]}, r"owner 'two words' must be"),
        ({"owners": ["a@b"]}, r"owner 'a@b' must be"),
        ({"owners": [3]}, r"owner 3 must be"),
        ({"run_tags": {"k": object()}}, r"run_tags: tag 'k' has the value .* write it as a string"),
        ({"run_tags": {"k": float("nan")}}, r"run_tags: tag 'k' has the value nan"),
        ({"run_tags": {3: "x"}}, r"run_tags: a tag's name must be a non-empty string, got 3"),
        ({"run_tags": "x"}, r"run_tags: tags must be a dict or a list of strings"),
    ],
)
def test_bad_metadata_owners_and_run_tags_are_refused(options: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=rf"@workflow 'tagged': {message}"):
        workflow(**options)(tagged)


def test_runs_get_tags_when_run_tags_is_not_set(instance: Instance) -> None:
    flow = workflow(tags={"team": "data"})(tagged)
    result = flow.run(instance=instance, tags={"extra": "1"})
    assert instance.run_store.get(result.run_id).tags == {"team": "data", "extra": "1"}


def test_runs_get_run_tags_and_not_tags_when_set(instance: Instance) -> None:
    flow = workflow(tags={"team": "data"}, run_tags={"cost_center": "42", "tier": "gold"})(tagged)
    assert flow.tags == {"team": "data"}
    assert flow.to_job_definition()["run_tags"] == {"cost_center": "42", "tier": "gold"}
    result = flow.run(instance=instance, tags={"tier": "silver"})
    assert instance.run_store.get(result.run_id).tags == {"cost_center": "42", "tier": "silver"}


def test_a_job_bodys_run_tags_too(instance: Instance) -> None:
    @job(tags=["nightly"], run_tags={})
    def body() -> str:
        return str(my_op())

    result = body.run(instance=instance)
    assert instance.run_store.get(result.run_id).tags == {}


def test_tag_values_that_are_not_strings_are_written_as_json() -> None:
    # Dagster's rule: "Values that are not already strings will be serialized as JSON".
    flow = workflow(tags={"priority": 1, "flags": ["a", "b"], "live": True, "team": "data"})(tagged)
    assert flow.tags == {"priority": "1", "flags": '["a", "b"]', "live": "true", "team": "data"}
