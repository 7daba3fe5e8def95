"""The secret store on SQLite and PostgreSQL: values encrypted under the instance's key,
the key file made private, a wrong key refused without losing anything; and redaction."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from conveyor import Secret
from conveyor.definitions.secrets import check_secret_name, secret_name
from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.instance import Instance
from conveyor.storage.redact import MASK, Redactor
from conveyor.storage.schema import secrets as secrets_table
from conveyor.storage.secrets import ENV_SECRET_KEY, KEY_FILE, SecretKeyError, UnknownSecretError


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)


def test_set_get_list_delete(durable: Instance) -> None:
    store = durable.secrets
    assert store.names() == []
    store.set("warehouse_password", "hunter22", by="alice")
    store.set("webhook/deploy.v2", "another-one", by="bob")
    assert store.get("warehouse_password") == "hunter22"
    infos = store.names()
    assert [i.name for i in infos] == ["warehouse_password", "webhook/deploy.v2"]
    first = infos[0]
    assert first.updated_by == "alice"
    assert first.created_at == first.updated_at
    store.set("warehouse_password", "changed!", by="carol")
    [again, _] = store.names()
    assert store.get("warehouse_password") == "changed!"
    assert (again.created_at, again.updated_by) == (first.created_at, "carol")
    assert again.updated_at >= first.updated_at
    store.delete("webhook/deploy.v2", by="bob")
    assert [i.name for i in store.names()] == ["warehouse_password"]
    with pytest.raises(UnknownSecretError, match=r"conveyor secrets set webhook/deploy\.v2"):
        store.get("webhook/deploy.v2")
    with pytest.raises(NotFoundError, match="not set"):
        store.delete("webhook/deploy.v2", by="bob")
    assert store.find("nope") is None


def test_values_are_encrypted_at_rest(durable: Instance) -> None:
    durable.secrets.set("pw", "plain-text-value", by="alice")
    with durable.db.read() as conn:
        [row] = conn.execute(select(secrets_table)).all()
    assert b"plain-text-value" not in bytes(row.ciphertext)
    assert durable.home is not None
    key = (durable.home / KEY_FILE).read_bytes().strip()
    assert Fernet(key).decrypt(bytes(row.ciphertext)) == b"plain-text-value"


def test_changes_and_reads_are_audited(durable: Instance) -> None:
    store = durable.secrets
    store.set("pw", "value-1", by="alice")
    store.get("pw")  # no reader: not audited
    store.get("pw", reader="run:abc (etl)")
    store.delete("pw", by="bob")
    entries = [(e.actor, e.action, e.target) for e in durable.audit.entries()]
    assert entries == [
        ("bob", "secret.delete", "pw"),
        ("run:abc (etl)", "secret.read", "pw"),
        ("alice", "secret.set", "pw"),
    ]


def test_the_key_file_is_made_private_on_first_use(tmp_path: Path) -> None:
    inst = Instance.at(tmp_path / "home")
    key_file = tmp_path / "home" / KEY_FILE
    assert not key_file.exists()  # an instance that keeps no secret makes no key
    inst.secrets.names()
    assert not key_file.exists()
    inst.secrets.set("pw", "value-1", by="me")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Another process of the instance reads the same key.
    other = Instance.at(tmp_path / "home")
    assert other.secrets.get("pw") == "value-1"
    inst.close()
    other.close()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    inst = Instance.at(tmp_path / "home")
    inst.secrets.set("pw", "value-1", by="me")
    key_file = tmp_path / "home" / KEY_FILE
    key_file.chmod(0o644)
    fresh = Instance.at(tmp_path / "home")
    with pytest.raises(SecretKeyError, match=f"chmod 600 {key_file}"):
        fresh.secrets.get("pw")
    key_file.chmod(0o600)
    assert fresh.secrets.get("pw") == "value-1"
    inst.close()
    fresh.close()


def test_the_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Fernet.generate_key().decode()
    monkeypatch.setenv(ENV_SECRET_KEY, first)
    inst = Instance.at(tmp_path / "home")
    inst.secrets.set("pw", "value-1", by="me")
    assert not (tmp_path / "home" / KEY_FILE).exists()
    assert inst.secrets.get("pw") == "value-1"
    # The variable changed in this process: the new key is the one used.
    monkeypatch.setenv(ENV_SECRET_KEY, Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match="stored under another key"):
        inst.secrets.get("pw")
    monkeypatch.setenv(ENV_SECRET_KEY, first)
    assert inst.secrets.get("pw") == "value-1"
    inst.close()


@pytest.mark.parametrize("bad", ["not-a-key", "", "   x", Fernet.generate_key().decode()[:-4]])
def test_a_malformed_key_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    inst = Instance.at(tmp_path / "home")
    if bad:
        monkeypatch.setenv(ENV_SECRET_KEY, bad)
        with pytest.raises(SecretKeyError, match=f"{ENV_SECRET_KEY} does not hold a Fernet key"):
            inst.secrets.set("pw", "value-1", by="me")
    (tmp_path / "home" / KEY_FILE).write_text("garbage\n")
    (tmp_path / "home" / KEY_FILE).chmod(0o600)
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)
    with pytest.raises(SecretKeyError, match=f"key file .*{KEY_FILE} does not hold a Fernet key"):
        inst.secrets.set("pw", "value-1", by="me")
    inst.close()


def test_a_wrong_key_is_named_and_loses_nothing(
    durable: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    durable.secrets.set("pw", "value-1", by="me")
    monkeypatch.setenv(ENV_SECRET_KEY, Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match=f"'pw' cannot be decrypted .* {ENV_SECRET_KEY}"):
        durable.secrets.get("pw")
    # Nothing is written under the wrong key: neither a new secret nor a new value.
    for name in ("pw", "other"):
        with pytest.raises(SecretKeyError, match="nothing was changed"):
            durable.secrets.set(name, "value-2", by="me")
    assert [i.name for i in durable.secrets.names()] == ["pw"]
    monkeypatch.delenv(ENV_SECRET_KEY)
    assert durable.secrets.get("pw") == "value-1"


def test_an_instance_in_memory_keeps_its_key_in_memory() -> None:
    inst = Instance.ephemeral()
    inst.secrets.set("pw", "value-1", by="me")
    assert inst.secrets.get("pw") == "value-1"
    inst.close()


@pytest.mark.parametrize(
    "name",
    ["", "a b", "/lead", "trail/", "a//b", "a/../b", "./a", "é", "a" * 256, "x:y", None, 3],
)
def test_bad_names_are_refused(instance: Instance, name: object) -> None:
    with pytest.raises(ConfigError, match=r"letters, digits and _ \. - /"):
        check_secret_name(name)
    if isinstance(name, str):
        with pytest.raises(ConfigError):
            instance.secrets.set(name, "value-1", by="me")
        with pytest.raises(ConfigError):
            Secret(name)


def test_an_empty_value_is_refused(instance: Instance) -> None:
    with pytest.raises(ConfigError, match="cannot be empty"):
        instance.secrets.set("pw", "", by="me")


def test_a_reference_is_text_that_names_its_secret() -> None:
    import pickle

    ref = Secret("warehouse_password")
    assert ref == 'Secret("warehouse_password")'
    assert repr(ref) == 'Secret("warehouse_password")'
    assert ref.name == "warehouse_password"
    assert secret_name(ref) == secret_name(str(ref)) == "warehouse_password"
    back = pickle.loads(pickle.dumps(ref))
    assert isinstance(back, Secret)
    assert back.name == "warehouse_password"
    for text in ("warehouse_password", 'Secret("a b")', "Secret('x')", 'Secret("x") ', None, 5):
        assert secret_name(text) is None


def test_redactor_masks_values_in_text_bytes_and_trees() -> None:
    r = Redactor(["hunter22", "abc", "hunter22-long"])
    assert r.values == ("hunter22", "hunter22-long")  # shorter than 4: not masked
    assert r.text("pw=hunter22-long; pw=hunter22; abc") == f"pw={MASK}; pw={MASK}; abc"
    assert r.bytes(b"x hunter22 \xff") == b"x *** \xff"
    assert r.tree({"a": ["hunter22", 3, ("hunter22",)], "b": None}) == {
        "a": [MASK, 3, (MASK,)],
        "b": None,
    }
    assert not Redactor()
    assert Redactor().text("hunter22") == "hunter22"
    special = Redactor(["a.b*c(d"])
    assert special.text("xa.b*c(dx aXbbc(d") == "x***x aXbbc(d"
