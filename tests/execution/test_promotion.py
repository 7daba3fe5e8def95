"""Promotion and rollback on the instance: order, versions, permission, policy, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.execution.promotion import (
    PromotionDeniedError,
    PromotionError,
    promote,
    require_success,
    rollback,
)
from conveyor.storage.deployments import NewVersion
from conveyor.storage.instance import Instance
from conveyor.storage.records import RunStatus


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Instance]:
    monkeypatch.delenv("CONVEYOR_ENVIRONMENTS", raising=False)
    monkeypatch.delenv("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", raising=False)
    inst = Instance.at(tmp_path / "home")
    yield inst
    inst.close()


def add(instance: Instance, tag: str, jobs: dict[str, str], env: str | None = "dev") -> int:
    """Record a version whose jobs have the given versions; activate it in ``env``."""
    record, _ = instance.deployments.add_version(
        NewVersion(
            hash=tag * 8,
            archive_uri=f"code/{tag}.tar.gz",
            size=10,
            entry="pipes.py",
            manifest={"jobs": {n: {"version": v} for n, v in jobs.items()}},
            created_by="dev-user",
            message=f"version {tag}",
        )
    )
    if env is not None:
        instance.deployments.activate(env, record.number, action="deploy", by="dev-user")
    return record.number


def succeed(instance: Instance, version: int, env: str) -> None:
    run = instance.run_store.create(
        job_name=f"{env}.etl",
        job_version="x",
        deployed_version=version,
        environment=env,
        then=RunStatus.RUNNING,
    )
    instance.run_store.set_status(run.id, RunStatus.SUCCESS)


def test_promote_copies_the_active_version_and_audits_it(instance: Instance) -> None:
    v1 = add(instance, "a", {"etl": "1", "report": "1"})
    record = promote(instance, "pre", from_env="dev", by="carol", message="looks good")
    assert record is not None
    assert (record.version, record.action, record.from_environment) == (v1, "promote", "dev")
    assert (record.by, record.message) == ("carol", "looks good")
    active = instance.deployments.active("pre")
    assert active is not None
    assert active.number == v1
    assert instance.deployments.latest() is not None
    assert len(instance.deployments.versions()) == 1  # the pointer moved; nothing rebuilt
    entry = instance.audit.entries(action="promote")[0]
    assert (entry.actor, entry.target) == ("carol", "pre")
    assert entry.detail == {"from": "dev", "version": v1, "outcome": "done"}
    # Again: already active, nothing recorded in the history, the attempt still audited.
    assert promote(instance, "pre", from_env="dev", by="carol") is None
    assert len(instance.deployments.history("pre")) == 1
    assert instance.audit.entries(action="promote")[0].detail == {
        "from": "dev",
        "version": v1,
        "previous": v1,
        "outcome": "unchanged",
    }


def test_an_earlier_version_of_the_source_may_be_promoted_but_not_one_it_never_ran(
    instance: Instance,
) -> None:
    v1 = add(instance, "a", {"etl": "1"})
    add(instance, "b", {"etl": "2"})
    never = add(instance, "c", {"etl": "3"}, env=None)
    record = promote(instance, "prod", from_env="dev", version=v1)
    assert record is not None
    assert record.version == v1
    with pytest.raises(PromotionError, match=f"version {never} was never active in dev"):
        promote(instance, "pre", from_env="dev", version=never)
    with pytest.raises(PromotionError, match="no version 99"):
        promote(instance, "pre", from_env="dev", version=99)


def test_promotions_go_forward_between_known_environments(instance: Instance) -> None:
    add(instance, "a", {"etl": "1"})
    promote(instance, "pre", from_env="dev")
    with pytest.raises(PromotionError, match=r"versions move forward \(dev -> pre -> prod\)"):
        promote(instance, "dev", from_env="pre")
    with pytest.raises(PromotionError, match="versions move forward"):
        promote(instance, "pre", from_env="pre")
    with pytest.raises(PromotionError, match=r"unknown environment 'qa'.*dev, pre, prod"):
        promote(instance, "qa", from_env="dev")
    outcomes = [e.detail["outcome"] for e in instance.audit.entries(action="promote") if e.detail]
    assert outcomes == ["refused", "refused", "refused", "done"]


def test_nothing_active_in_the_source_is_a_clear_error(instance: Instance) -> None:
    with pytest.raises(PromotionError, match="nothing to promote from dev: no version is active"):
        promote(instance, "pre", from_env="dev")


def test_a_job_argument_must_be_in_the_version(instance: Instance) -> None:
    add(instance, "a", {"etl": "1", "report": "1"})
    assert promote(instance, "pre", from_env="dev", job="etl") is not None
    with pytest.raises(PromotionError, match=r"job 'nope' is not in version 1.*etl, report"):
        promote(instance, "prod", from_env="dev", job="nope")


def test_promote_needs_the_permission_on_every_job_and_refusals_are_audited(
    instance: Instance,
) -> None:
    add(instance, "a", {"etl": "1", "report": "1", "load": "1"})
    with pytest.raises(PromotionDeniedError, match="promote permission on jobs load, report") as e:
        promote(instance, "pre", from_env="dev", by="olga", allowed=lambda j: j == "etl")
    assert e.value.jobs == ["load", "report"]
    assert isinstance(e.value, PermissionError)
    assert instance.deployments.active("pre") is None
    entry = instance.audit.entries(actor="olga")[0]
    assert entry.action == "promote"
    assert entry.target == "pre"
    assert entry.detail is not None
    assert entry.detail["outcome"] == "denied"
    assert "load, report" in entry.detail["reason"]


def test_the_jobs_of_the_replaced_version_need_the_permission_too(instance: Instance) -> None:
    add(instance, "a", {"etl": "1", "old": "1"})
    promote(instance, "pre", from_env="dev")
    add(instance, "b", {"etl": "2"})  # removes job old
    with pytest.raises(PromotionDeniedError, match="on job old "):
        promote(instance, "pre", from_env="dev", allowed=lambda j: j == "etl")
    assert promote(instance, "pre", from_env="dev", allowed=lambda j: True) is not None


def test_the_policy_requires_a_successful_run_in_the_source(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_PROMOTE_REQUIRE_SUCCESS", "prod")
    v1 = add(instance, "a", {"etl": "1"})
    assert promote(instance, "pre", from_env="dev") is not None  # pre has no policy
    with pytest.raises(PromotionError, match="prod requires a successful run of it in pre"):
        promote(instance, "prod", from_env="pre")
    succeed(instance, v1, "dev")  # a success elsewhere does not count
    with pytest.raises(PromotionError, match="successful run"):
        promote(instance, "prod", from_env="pre")
    succeed(instance, v1, "pre")
    record = promote(instance, "prod", from_env="pre")
    assert record is not None
    assert record.version == v1


@pytest.mark.parametrize("value", ["staging", "pre,,qa", "PROD"])
def test_a_policy_naming_an_unknown_environment_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="is not an environment; the environments are dev"):
        require_success(value)


def test_policy_names_are_read_with_spaces_and_empty_is_none() -> None:
    assert require_success(" pre , prod ") == {"pre", "prod"}
    assert require_success("") == frozenset()


def test_rollback_goes_back_one_version_at_a_time(instance: Instance) -> None:
    v1 = add(instance, "a", {"etl": "1"})
    v2 = add(instance, "b", {"etl": "2"})
    v3 = add(instance, "c", {"etl": "3"})
    record = rollback(instance, "dev", by="carol")
    assert record is not None
    assert (record.version, record.action, record.previous_version) == (v2, "rollback", v3)
    record = rollback(instance, "dev", by="carol")
    assert record is not None
    assert record.version == v1
    with pytest.raises(PromotionError, match="nothing to roll back to in dev"):
        rollback(instance, "dev")
    entries = instance.audit.entries(action="rollback")
    assert [e.detail["outcome"] for e in entries if e.detail] == ["refused", "done", "done"]


def test_rollback_to_a_named_version_that_ran_there(instance: Instance) -> None:
    v1 = add(instance, "a", {"etl": "1"})
    add(instance, "b", {"etl": "2"})
    add(instance, "c", {"etl": "3"}, env=None)
    record = rollback(instance, "dev", to=v1)
    assert record is not None
    assert record.version == v1
    assert rollback(instance, "dev", to=v1) is None  # active already
    with pytest.raises(PromotionError, match=r"never active in dev .the versions it ran: 2, 1"):
        rollback(instance, "dev", to=3)
    with pytest.raises(PromotionError, match="nothing to roll back in prod"):
        rollback(instance, "prod")
    with pytest.raises(PromotionError, match=r"unknown environment 'live'"):
        rollback(instance, "live")


def test_rollback_needs_the_promote_permission(instance: Instance) -> None:
    add(instance, "a", {"etl": "1"})
    add(instance, "b", {"etl": "2", "new": "1"})
    with pytest.raises(PromotionDeniedError, match=r"may not roll back dev to version 1.*new"):
        rollback(instance, "dev", by="olga", allowed=lambda j: j == "etl")
    active = instance.deployments.active("dev")
    assert active is not None
    assert active.number == 2
    entry = instance.audit.entries(action="rollback")[0]
    assert entry.actor == "olga"
    assert entry.detail is not None
    assert entry.detail["outcome"] == "denied"


def test_configured_environment_names_set_the_order(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_ENVIRONMENTS", "test,live")
    add(instance, "a", {"etl": "1"}, env="test")
    assert promote(instance, "live", from_env="test") is not None
    with pytest.raises(PromotionError, match=r"unknown environment 'pre'"):
        promote(instance, "pre", from_env="test")
