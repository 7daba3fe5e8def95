"""Users, groups, API tokens and browser sessions.

Passwords are kept as argon2id hashes. Tokens and session cookies are random
secrets of which only the SHA-256 is stored: a copy of the database lets
nobody in. A token's secret reads ``cvt_<id>_<random>``, so a leaked one is
recognisable, and ``<id>`` is the handle lists and revocations show.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.definitions.access import Role, parse_role
from conveyor.errors import ConfigError, DefinitionError, NotFoundError
from conveyor.storage.db import Database
from conveyor.storage.schema import api_tokens, group_members, groups, sessions, users
from conveyor.storage.upsert import insert_or_update

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,254}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "cvt_"
# A token's last use is written at most this often (seconds): a script calling the
# API in a loop does not write a row per call.
LAST_USED_EVERY = 60.0
SESSION_TTL = 12 * 3600.0

if TYPE_CHECKING:
    from argon2 import PasswordHasher

TokenState = Literal["active", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    email: str | None
    oidc_subject: str | None
    created_at: float
    disabled: bool
    has_password: bool
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    user_name: str
    name: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None

    def state(self, now: float | None = None) -> TokenState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Session:
    user_name: str
    csrf: str
    created_at: float
    expires_at: float
    address: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(
            f"{what} name {name!r}: use letters, digits and _ . @ + - (up to 255), "
            f"starting with a letter or digit"
        )
    return name


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._hasher: PasswordHasher | None = None
        # What a password is checked against when the user has none (or does not
        # exist), so that the answer takes as long as for a wrong password.
        self._dummy_hash: str | None = None

    # -- passwords -----------------------------------------------------------------

    def _argon(self) -> PasswordHasher:
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher()  # argon2id, with the library's parameters
        return self._hasher

    def _hash(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise ConfigError(f"a password must be at least {MIN_PASSWORD} characters long")
        return self._argon().hash(password)

    def _verify(self, hashed: str | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = self._argon()
        if hashed is None and self._dummy_hash is None:
            self._dummy_hash = hasher.hash(secrets.token_hex(16))
        try:
            return hasher.verify(hashed or self._dummy_hash or "", password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    # -- users ---------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: Role | str = Role.VIEWER,
        *,
        password: str | None = None,
        email: str | None = None,
        oidc_subject: str | None = None,
    ) -> User:
        """A new user; ``ConfigError`` if the name is taken or the password too short."""
        check_name(name, "user")
        role = _role(role)
        hashed = self._hash(password) if password is not None else None
        try:
            with self.db.write() as conn:
                if oidc_subject is not None:
                    self._check_subject_free(conn, oidc_subject, name)
                # ON CONFLICT: two admins adding one name at once make one user, and the
                # other hears that it exists (a look first would let both insert).
                added = conn.execute(
                    insert_or_update(conn, users, ["name"]).returning(users.c.name),
                    {
                        "name": name,
                        "role": role.value,
                        "password_hash": hashed,
                        "email": email,
                        "oidc_subject": oidc_subject,
                        "created_at": time.time(),
                        "disabled": False,
                    },
                ).first()
                if added is None:
                    raise ConfigError(
                        f"user {name!r} exists already; change it with `conveyor users "
                        f"set-role` or remove it first"
                    )
        except IntegrityError:  # the subject was linked by another writer meanwhile
            raise ConfigError(_subject_taken(oidc_subject, None)) from None
        user = self.user(name)
        assert user is not None
        return user

    def user(self, name: str) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
            if row is None:
                return None
            member_of = conn.execute(
                select(group_members.c.group_name)
                .where(group_members.c.user_name == name)
                .order_by(group_members.c.group_name)
            ).scalars()
            return _user(row, tuple(member_of))

    def require_user(self, name: str) -> User:
        user = self.user(name)
        if user is None:
            raise NotFoundError(f"no user {name!r}; list them with `conveyor users list`")
        return user

    def users(self) -> list[User]:
        with self.db.read() as conn:
            members: dict[str, list[str]] = {}
            for m in conn.execute(select(group_members).order_by(group_members.c.group_name)):
                members.setdefault(m.user_name, []).append(m.group_name)
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [_user(r, tuple(members.get(r.name, ()))) for r in rows]

    def count_users(self) -> int:
        with self.db.read() as conn:
            return len(conn.execute(select(users.c.name)).all())

    def set_role(self, name: str, role: Role | str) -> User:
        self._update_user(name, role=_role(role).value)
        return self.require_user(name)

    def set_password(self, name: str, password: str) -> None:
        self._update_user(name, password_hash=self._hash(password))

    def set_disabled(self, name: str, disabled: bool) -> None:
        """A disabled user cannot sign in, and its sessions and tokens stop working."""
        self._update_user(name, disabled=disabled)
        if disabled:
            self.end_sessions(name)

    def link_oidc(self, name: str, subject: str) -> None:
        """Sign-ins with OIDC subject ``subject`` are user ``name``'s from now on;
        ``ConfigError`` if another user has it."""
        try:
            with self.db.write() as conn:
                self._check_subject_free(conn, subject, name)
                if not conn.execute(
                    update(users).where(users.c.name == name).values(oidc_subject=subject)
                ).rowcount:
                    raise NotFoundError(f"no user {name!r}; list them with `conveyor users list`")
        except IntegrityError:
            raise ConfigError(_subject_taken(subject, None)) from None

    @staticmethod
    def _check_subject_free(conn: Connection, subject: str, name: str) -> None:
        owner = conn.execute(select(users.c.name).where(users.c.oidc_subject == subject)).scalar()
        if owner is not None and owner != name:
            raise ConfigError(_subject_taken(subject, owner))

    def user_by_oidc(self, subject: str) -> User | None:
        with self.db.read() as conn:
            name = conn.execute(
                select(users.c.name).where(users.c.oidc_subject == subject)
            ).scalar()
        return self.user(name) if name is not None else None

    def remove_user(self, name: str) -> None:
        """Remove the user with its memberships, tokens and sessions."""
        with self.db.write() as conn:
            for table in (group_members, api_tokens, sessions):
                conn.execute(delete(table).where(table.c.user_name == name))
            if not conn.execute(delete(users).where(users.c.name == name)).rowcount:
                raise NotFoundError(f"no user {name!r}; list them with `conveyor users list`")

    def check_password(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs and they are not disabled, else ``None``."""
        with self.db.read() as conn:
            hashed = conn.execute(
                select(users.c.password_hash).where(users.c.name == name)
            ).scalar()
        if not self._verify(hashed, password):
            return None
        user = self.user(name)
        return user if user is not None and not user.disabled else None

    def _update_user(self, name: str, **values: object) -> None:
        with self.db.write() as conn:
            if not conn.execute(
                update(users).where(users.c.name == name).values(**values)
            ).rowcount:
                raise NotFoundError(f"no user {name!r}; list them with `conveyor users list`")

    # -- groups --------------------------------------------------------------------

    def add_group(self, name: str) -> None:
        check_name(name, "group")
        with self.db.write() as conn:
            added = conn.execute(
                insert_or_update(conn, groups, ["name"]).returning(groups.c.name),
                {"name": name, "created_at": time.time()},
            ).first()
        if added is None:
            raise ConfigError(f"group {name!r} exists already")

    def remove_group(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(group_members).where(group_members.c.group_name == name))
            if not conn.execute(delete(groups).where(groups.c.name == name)).rowcount:
                raise NotFoundError(f"no group {name!r}; list them with `conveyor groups list`")

    def groups(self) -> dict[str, list[str]]:
        """Each group with its members, by name."""
        with self.db.read() as conn:
            out: dict[str, list[str]] = {
                name: []
                for name in conn.execute(select(groups.c.name).order_by(groups.c.name)).scalars()
            }
            for m in conn.execute(select(group_members).order_by(group_members.c.user_name)):
                out.setdefault(m.group_name, []).append(m.user_name)
        return out

    def add_member(self, group: str, user: str) -> None:
        with self.db.write() as conn:
            if not conn.execute(select(groups.c.name).where(groups.c.name == group)).first():
                raise NotFoundError(
                    f"no group {group!r}; make it with `conveyor groups add {group}`"
                )
            if not conn.execute(select(users.c.name).where(users.c.name == user)).first():
                raise NotFoundError(f"no user {user!r}; list them with `conveyor users list`")
            conn.execute(
                insert_or_update(conn, group_members, ["group_name", "user_name"]),
                {"group_name": group, "user_name": user},
            )

    def remove_member(self, group: str, user: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                delete(group_members).where(
                    group_members.c.group_name == group, group_members.c.user_name == user
                )
            ).rowcount
        if not done:
            raise NotFoundError(f"{user!r} is not a member of group {group!r}")

    # -- API tokens ----------------------------------------------------------------

    def create_token(
        self, user: str, name: str, *, expires_in: float | None = None
    ) -> tuple[Token, str]:
        """A new token of ``user``: the record, and the secret (shown this once)."""
        self.require_user(user)
        if not name or not isinstance(name, str) or len(name) > 255:
            raise ConfigError("a token needs a name (up to 255 characters) saying what uses it")
        if expires_in is not None and expires_in <= 0:
            raise ConfigError(f"a token's lifetime must be positive, got {expires_in} s")
        token_id = secrets.token_hex(6)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self.db.write() as conn:
            conn.execute(
                insert(api_tokens).values(
                    id=token_id,
                    user_name=user,
                    name=name,
                    secret_hash=_digest(secret),
                    created_at=now,
                    expires_at=now + expires_in if expires_in is not None else None,
                )
            )
        token = self.token(token_id)
        assert token is not None
        return token, secret

    def token(self, token_id: str) -> Token | None:
        with self.db.read() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        return _token(row) if row is not None else None

    def tokens(self, user: str | None = None) -> list[Token]:
        query = select(api_tokens).order_by(api_tokens.c.created_at)
        if user is not None:
            query = query.where(api_tokens.c.user_name == user)
        with self.db.read() as conn:
            return [_token(r) for r in conn.execute(query)]

    def check_token(self, secret: str) -> Token | None:
        """The token whose secret this is (in any state: see ``Token.state``), and
        its last use noted; ``None`` if there is none."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        with self.db.read() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.secret_hash == _digest(secret))
            ).first()
        if row is None:
            return None
        token = _token(row)
        now = time.time()
        if token.state(now) == "active" and (
            token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY
        ):
            with self.db.write() as conn:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=now)
                )
        return token

    def revoke_token(self, token_id: str) -> Token:
        with self.db.write() as conn:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
        token = self.token(token_id)
        if token is None:
            raise NotFoundError(f"no token {token_id!r}; list them with `conveyor tokens list`")
        if not done:
            raise ConfigError(f"token {token_id!r} was revoked already")
        return token

    # -- browser sessions ----------------------------------------------------------

    def create_session(
        self, user: str, *, address: str | None = None, ttl: float = SESSION_TTL
    ) -> tuple[str, Session]:
        """A new session of ``user``: the cookie's secret, and the session."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(user, secrets.token_urlsafe(32), now, now + ttl, address)
        with self.db.write() as conn:
            # Expired sessions go as new ones come: the table holds the live ones.
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    secret_hash=_digest(secret),
                    user_name=user,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                    address=(address or "")[:64] or None,
                )
            )
        return secret, session

    def session(self, secret: str) -> Session | None:
        """The live session of the cookie ``secret``; ``None`` if unknown or expired."""
        with self.db.read() as conn:
            row = conn.execute(
                select(sessions).where(
                    sessions.c.secret_hash == _digest(secret), sessions.c.expires_at > time.time()
                )
            ).first()
        if row is None:
            return None
        return Session(row.user_name, row.csrf, row.created_at, row.expires_at, row.address)

    def end_session(self, secret: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.secret_hash == _digest(secret)))

    def end_sessions(self, user: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.user_name == user))


def _subject_taken(subject: str | None, owner: str | None) -> str:
    who = f"user {owner!r}" if owner is not None else "another user"
    return (
        f"OIDC subject {subject!r} is linked to {who} already; remove that user, or sign in as it"
    )


def _role(role: Role | str) -> Role:
    try:
        return parse_role(role)
    except DefinitionError as e:
        raise ConfigError(str(e)) from None


def _user(r: Row[Any], member_of: tuple[str, ...]) -> User:
    return User(
        name=r.name,
        role=Role(r.role),
        email=r.email,
        oidc_subject=r.oidc_subject,
        created_at=float(r.created_at),
        disabled=bool(r.disabled),
        has_password=r.password_hash is not None,
        groups=member_of,
    )


def _token(r: Row[Any]) -> Token:
    return Token(
        id=r.id,
        user_name=r.user_name,
        name=r.name,
        created_at=float(r.created_at),
        expires_at=r.expires_at,
        last_used_at=r.last_used_at,
        revoked_at=r.revoked_at,
    )
