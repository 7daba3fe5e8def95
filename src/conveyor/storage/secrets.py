"""Secrets, encrypted at rest: what ``Secret("name")`` resolves to when a run starts.

Each value is a Fernet token (AES-128-CBC with an HMAC-SHA256) under the
instance's key: ``CONVEYOR_SECRET_KEY``, or else the key file
``<CONVEYOR_HOME>/secret.key``, made with mode 0600 on first use. A copy of
the database without the key reveals names and times, not values. The key is
read only when a value is written or read, so an instance that keeps no
secrets never makes a key file.

A key that cannot open the stored values (the wrong one) is an error naming
where the key came from; nothing is written with it, so no value is lost.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from conveyor.definitions.secrets import check_secret_name
from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.audit import AuditStore
from conveyor.storage.db import Database
from conveyor.storage.schema import secrets
from conveyor.storage.upsert import insert_or_update

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

ENV_SECRET_KEY = "CONVEYOR_SECRET_KEY"
KEY_FILE = "secret.key"
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class SecretKeyError(ConfigError):
    """The instance's secret key is missing, malformed, open to other users, or not the
    key the stored secrets were encrypted with."""


class UnknownSecretError(NotFoundError, ConfigError):
    """A secret that was asked for is not set in the instance."""


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret as lists show it: never its value."""

    name: str
    created_at: float
    updated_at: float
    updated_by: str


class SecretStore:
    """The instance's secrets: ``set``, ``get`` (decrypts), ``names``, ``delete``.

    Changes and reads by a named reader are written to the audit log
    (``secret.set``, ``secret.delete``, ``secret.read``).
    """

    def __init__(self, db: Database, audit: AuditStore, home: Path | None) -> None:
        self.db = db
        self.audit = audit
        self.home = home
        self._lock = threading.Lock()
        self._fernet: Fernet | None = None
        self._source = ""
        # An instance in memory without CONVEYOR_SECRET_KEY keeps a key in memory:
        # its secrets are gone with it anyway.
        self._memory_key: bytes | None = None

    # -- the key --------------------------------------------------------------------------

    @property
    def key_source(self) -> str:
        """Where the key comes from, as errors name it."""
        if os.environ.get(ENV_SECRET_KEY):
            return f"the environment variable {ENV_SECRET_KEY}"
        if self.home is not None:
            return f"the key file {self.home / KEY_FILE}"
        return "this process's memory (an instance in memory)"

    def _cipher(self) -> Fernet:
        from cryptography.fernet import Fernet

        source = self.key_source
        env = os.environ.get(ENV_SECRET_KEY)
        # The key is read again when where it comes from changes (the variable set,
        # changed or unset in this process).
        wanted = f"{source}\0{env or ''}"
        with self._lock:
            if self._fernet is not None and self._source == wanted:
                return self._fernet
            if env:
                key = env.strip().encode()
            elif self.home is not None:
                key = _key_file(self.home / KEY_FILE)
            else:
                self._memory_key = self._memory_key or Fernet.generate_key()
                key = self._memory_key
            try:
                fernet = Fernet(key)
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"{source} does not hold a Fernet key (32 url-safe base64-encoded bytes); "
                    f"make one with: {MAKE_KEY}"
                ) from None
            self._fernet, self._source = fernet, wanted
            return fernet

    def _decrypt(self, name: str, ciphertext: bytes) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._cipher().decrypt(bytes(ciphertext)).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"secret {name!r} cannot be decrypted with the key from {self.key_source}: "
                f"it was stored under another key. Give the key it was stored with "
                f"({ENV_SECRET_KEY}, or the file {KEY_FILE} of the instance's home); "
                f"nothing was changed"
            ) from None

    # -- values ---------------------------------------------------------------------------

    def set(self, name: str, value: str, by: str) -> None:
        """Store ``value`` as secret ``name`` (replacing the one there), encrypted."""
        check_secret_name(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"secret {name!r}: give a value (it cannot be empty)")
        fernet = self._cipher()
        # The key must open what is stored already: a secret written under another key
        # would leave the store holding values no single key opens.
        with self.db.read() as conn:
            sample = conn.execute(
                select(secrets.c.name, secrets.c.ciphertext)
                .order_by((secrets.c.name == name).desc(), secrets.c.name)
                .limit(1)
            ).first()
        if sample is not None:
            self._decrypt(sample.name, sample.ciphertext)
        now = time.time()
        row = {
            "name": name,
            "ciphertext": fernet.encrypt(value.encode("utf-8")),
            "created_at": now,
            "updated_at": now,
            "updated_by": by[:255],
        }
        with self.db.write() as conn:
            conn.execute(
                insert_or_update(
                    conn, secrets, ["name"], ["ciphertext", "updated_at", "updated_by"]
                ),
                row,
            )
        self.audit.append(by, "secret.set", target=name)

    def get(self, name: str, *, reader: str | None = None) -> str:
        """The value of secret ``name``; with ``reader``, the read is in the audit log.

        Raises:
            UnknownSecretError: no secret ``name`` (the message says how to set it).
            SecretKeyError: the key cannot open it.
        """
        check_secret_name(name)
        with self.db.read() as conn:
            ciphertext = conn.execute(
                select(secrets.c.ciphertext).where(secrets.c.name == name)
            ).scalar()
        if ciphertext is None:
            raise UnknownSecretError(
                f"secret {name!r} is not set in this instance; set it with "
                f"`conveyor secrets set {name}`"
            )
        value = self._decrypt(name, ciphertext)
        if reader is not None:
            self.audit.append(reader, "secret.read", target=name)
        return value

    def find(self, name: str) -> str | None:
        """The value of secret ``name``, or None when it is not set (not audited)."""
        try:
            return self.get(name)
        except UnknownSecretError:
            return None

    def names(self) -> list[SecretInfo]:
        """Every secret's name and times, by name; values are never listed."""
        query = select(
            secrets.c.name, secrets.c.created_at, secrets.c.updated_at, secrets.c.updated_by
        ).order_by(secrets.c.name)
        with self.db.read() as conn:
            return [
                SecretInfo(r.name, float(r.created_at), float(r.updated_at), r.updated_by)
                for r in conn.execute(query)
            ]

    def delete(self, name: str, by: str) -> None:
        """Forget secret ``name``. ``UnknownSecretError`` if there is none."""
        check_secret_name(name)
        with self.db.write() as conn:
            gone = conn.execute(delete(secrets).where(secrets.c.name == name)).rowcount
        if not gone:
            raise UnknownSecretError(f"secret {name!r} is not set in this instance")
        self.audit.append(by, "secret.delete", target=name)


def _key_file(path: Path) -> bytes:
    """The key in ``path``, made (mode 0600) if there is none; ``SecretKeyError`` if the
    file can be read by other users."""
    from cryptography.fernet import Fernet

    if not path.exists():
        _make_key_file(path, Fernet.generate_key())
    try:
        st = path.stat()
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            raise SecretKeyError(
                f"the key file {path} can be read or changed by other users (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); make it private with: chmod 600 {path}"
            )
        return path.read_bytes().strip()
    except OSError as e:
        raise SecretKeyError(f"cannot read the key file {path} ({e.strerror or e})") from None


def _make_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` (mode 0600) unless another process made it first: the
    key goes to a file of its own, linked into place whole, so nobody reads half a key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    except OSError as e:
        raise SecretKeyError(
            f"cannot create the key file {path} ({e.strerror or e}); make the instance's home "
            f"writable, or set {ENV_SECRET_KEY} to a key made with: {MAKE_KEY}"
        ) from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
