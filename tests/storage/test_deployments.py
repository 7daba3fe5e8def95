"""The deployment store: versions by content hash, environments and their history."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.deployments import (
    DEFAULT_ENVIRONMENTS,
    NewVersion,
    environment_names,
    manifest_diff,
)
from conveyor.storage.instance import Instance


def new(digest: str, jobs: dict[str, str], **extra: Any) -> NewVersion:
    return NewVersion(
        hash=digest * 64,
        archive_uri=f"code/{digest}.tar.gz",
        size=10,
        entry="pipelines.py",
        manifest={"jobs": {name: {"version": v} for name, v in jobs.items()}},
        **extra,
    )


def test_versions_are_numbered_once_per_content(durable: Instance) -> None:
    store = durable.deployments
    first, created = store.add_version(new("a", {"etl": "1"}, created_by="alice", message="m"))
    assert (first.number, created) == (1, True)
    assert first.diff == {"added": ["etl"], "changed": [], "removed": []}
    assert (first.created_by, first.message, first.jobs) == ("alice", "m", ["etl"])
    again, created = store.add_version(new("a", {"etl": "changed"}))
    assert (again.number, created) == (1, False)
    assert again.manifest == first.manifest  # the first record stands
    second, _ = store.add_version(new("b", {"etl": "2", "report": "1"}))
    assert second.number == 2
    assert second.diff == {"added": ["report"], "changed": ["etl"], "removed": []}
    third, _ = store.add_version(new("c", {"report": "1"}))
    assert third.diff == {"added": [], "changed": [], "removed": ["etl"]}
    assert [v.number for v in store.versions()] == [3, 2, 1]
    assert store.latest() == third
    assert store.by_hash("b" * 64) == second
    assert store.by_hash("z" * 64) is None
    with pytest.raises(NotFoundError, match="no version 9: they are 1 to 3"):
        store.version(9)


def test_no_version_yet_is_said(durable: Instance) -> None:
    with pytest.raises(NotFoundError, match="no version has been deployed yet"):
        durable.deployments.version(1)
    assert durable.deployments.latest() is None
    assert durable.deployments.active("dev") is None


def test_activation_moves_the_pointer_and_records_history(durable: Instance) -> None:
    store = durable.deployments
    store.add_version(new("a", {"etl": "1"}))
    store.add_version(new("b", {"etl": "2"}))
    made = store.activate("dev", 1, action="deploy", by="alice", message="first")
    assert made is not None
    assert (made.version, made.previous_version, made.activation) == (1, None, 1)
    assert store.activate("dev", 1, action="deploy") is None  # active already: nothing
    moved = store.activate("dev", 2, action="deploy", by="bob")
    assert moved is not None
    assert (moved.previous_version, moved.activation) == (1, 2)
    promoted = store.activate("pre", 1, action="promote", from_environment="dev", by="carol")
    assert promoted is not None
    assert promoted.from_environment == "dev"
    back = store.activate("dev", 1, action="rollback", by="bob")
    assert back is not None
    assert back.activation == 3
    assert store.active("dev") == store.version(1)
    envs = {e.name: e for e in store.environments()}
    assert [e.name for e in store.environments()] == list(DEFAULT_ENVIRONMENTS)
    assert (envs["dev"].active_version, envs["dev"].activations) == (1, 3)
    assert envs["prod"].active_version is None
    assert [(h.environment, h.version, h.action) for h in store.history()] == [
        ("dev", 1, "rollback"),
        ("pre", 1, "promote"),
        ("dev", 2, "deploy"),
        ("dev", 1, "deploy"),
    ]
    assert [h.version for h in store.history("pre")] == [1]
    assert [v.number for v in store.versions("pre")] == [1]
    assert [v.number for v in store.versions("dev")] == [2, 1]
    with pytest.raises(NotFoundError, match="no version 7"):
        store.activate("dev", 7, action="deploy")
    with pytest.raises(ValueError, match="action 'move' is not one of"):
        store.activate("dev", 1, action="move")


def test_racing_deploys_get_one_number_each(durable: Instance) -> None:
    store = durable.deployments
    numbers: list[int] = []
    errors: list[BaseException] = []

    def deploy(digest: str) -> None:
        try:
            numbers.append(store.add_version(new(digest, {"etl": digest}))[0].number)
        except BaseException as e:  # pragma: no cover - shown by the assert below
            errors.append(e)

    threads = [threading.Thread(target=deploy, args=(d,)) for d in "abcdabcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted({v.number for v in store.versions()}) == [1, 2, 3, 4]
    assert sorted(numbers) == [1, 1, 2, 2, 3, 3, 4, 4]


def test_racing_activations_count_each_once(durable: Instance) -> None:
    store = durable.deployments
    for d in "ab":
        store.add_version(new(d, {"etl": d}))
    done: list[object] = []
    threads = [
        threading.Thread(target=lambda n=n: done.append(store.activate("dev", n, action="deploy")))
        for n in (1, 2, 1, 2, 1, 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    made = [d for d in done if d is not None]
    env = store.environment("dev")
    assert env.activations == len(made) == len(store.history("dev"))
    assert sorted(h.activation for h in store.history("dev")) == list(range(1, len(made) + 1))


def test_the_diff_of_manifests() -> None:
    before = {"jobs": {"a": {"version": "1"}, "b": {"version": "1"}}}
    after = {"jobs": {"a": {"version": "2"}, "c": {"version": "1"}}}
    assert manifest_diff(before, after) == {"added": ["c"], "changed": ["a"], "removed": ["b"]}
    assert manifest_diff(None, {"jobs": {}}) == {"added": [], "changed": [], "removed": []}


@pytest.mark.parametrize(
    ("value", "names"),
    [("", DEFAULT_ENVIRONMENTS), ("dev,prod", ("dev", "prod")), (" a , b-2 ", ("a", "b-2"))],
)
def test_environment_names(value: str, names: tuple[str, ...]) -> None:
    assert environment_names(value) == names


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Dev", "'Dev' is not an environment name"),
        ("dev,,prod", "'' is not an environment name"),
        ("dev prod", "'dev prod' is not an environment name"),
        ("dev,dev", "an environment is named twice"),
        ("local,prod", "'local' is the workspace's files"),
        ("9lives", "starting with a letter"),
    ],
)
def test_bad_environment_names_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        environment_names(value)


def test_environment_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_ENVIRONMENTS", "test,live")
    assert environment_names() == ("test", "live")
