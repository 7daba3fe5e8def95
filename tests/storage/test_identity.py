"""The contract of the access-control stores, on SQLite and PostgreSQL: users and their
passwords, groups, API tokens and sessions (``storage.identity``), the access lists an
admin edits (``storage.access``), and the append-only audit log (``storage.audit``)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from conveyor.definitions.access import Permission, Role
from conveyor.errors import ConfigError, NotFoundError
from conveyor.storage.instance import Instance
from conveyor.storage.schema import api_tokens, sessions, users
from tests.storage.test_sensors import race

PASSWORD = "correct horse"

# -- users ---------------------------------------------------------------------------------


def test_add_a_user_and_read_it_back(durable: Instance) -> None:
    ids = durable.identity
    user = ids.add_user("alice", "operator", password=PASSWORD, email="a@example.com")
    assert (user.name, user.role, user.email, user.has_password) == (
        "alice",
        Role.OPERATOR,
        "a@example.com",
        True,
    )
    assert not user.disabled
    assert user.groups == ()
    assert user.oidc_subject is None
    assert ids.user("alice") == user
    assert ids.user("nobody") is None
    assert ids.count_users() == 1


def test_users_are_listed_by_name_with_their_groups(durable: Instance) -> None:
    ids = durable.identity
    for name in ("carol", "alice", "bob"):
        ids.add_user(name)
    ids.add_group("quants")
    ids.add_group("ops")
    ids.add_member("quants", "bob")
    ids.add_member("ops", "bob")
    listed = ids.users()
    assert [u.name for u in listed] == ["alice", "bob", "carol"]
    assert [u.groups for u in listed] == [(), ("ops", "quants"), ()]
    assert all(u.role is Role.VIEWER and not u.has_password for u in listed)
    assert ids.require_user("bob").groups == ("ops", "quants")


def test_a_password_is_stored_as_an_argon2id_hash(durable: Instance) -> None:
    durable.identity.add_user("alice", password=PASSWORD)
    with durable.db.read() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_check_password(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice", password=PASSWORD)
    ids.add_user("oidc-only")
    user = ids.check_password("alice", PASSWORD)
    assert user is not None
    assert user.name == "alice"
    assert ids.check_password("alice", "wrong horse") is None
    assert ids.check_password("alice", "") is None
    assert ids.check_password("nobody", PASSWORD) is None
    assert ids.check_password("oidc-only", PASSWORD) is None
    ids.set_password("alice", "battery staple")
    assert ids.check_password("alice", PASSWORD) is None
    assert ids.check_password("alice", "battery staple") is not None


def test_a_disabled_user_cannot_sign_in_and_loses_its_sessions(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice", password=PASSWORD)
    secret, _ = ids.create_session("alice")
    ids.set_disabled("alice", True)
    assert ids.require_user("alice").disabled
    assert ids.check_password("alice", PASSWORD) is None
    assert ids.session(secret) is None
    ids.set_disabled("alice", False)
    assert ids.check_password("alice", PASSWORD) is not None


@pytest.mark.parametrize("password", ["", "short", "1234567", None, 12345678])
def test_a_password_must_be_a_string_of_eight_characters(
    durable: Instance, password: object
) -> None:
    ids = durable.identity
    with pytest.raises(ConfigError, match="a password must be at least 8 characters long"):
        ids.add_user("alice", password=password or "x")  # type: ignore[arg-type]
    assert ids.user("alice") is None
    ids.add_user("bob", password=PASSWORD)
    with pytest.raises(ConfigError, match="at least 8 characters"):
        ids.set_password("bob", password)  # type: ignore[arg-type]
    assert ids.check_password("bob", PASSWORD) is not None


@pytest.mark.parametrize(
    "name", ["", " alice", "user:alice", "group:x", "a b", "-dash", "x" * 256, None, 3]
)
def test_a_user_name_is_letters_digits_and_a_few_marks(durable: Instance, name: object) -> None:
    with pytest.raises(ConfigError, match=r"user name .*: use letters, digits and _ \. @ \+ -"):
        durable.identity.add_user(name)  # type: ignore[arg-type]
    assert durable.identity.users() == []


@pytest.mark.parametrize("name", ["alice", "a.b-c_d", "alice@example.com", "x" * 255, "7"])
def test_good_user_names(durable: Instance, name: str) -> None:
    assert durable.identity.add_user(name).name == name


@pytest.mark.parametrize("role", ["root", "", "Viewers", None])
def test_an_unknown_role_is_refused_naming_the_roles(durable: Instance, role: object) -> None:
    ids = durable.identity
    with pytest.raises(ConfigError, match="use one of viewer, operator, editor, admin"):
        ids.add_user("alice", role)  # type: ignore[arg-type]
    ids.add_user("bob")
    with pytest.raises(ConfigError, match="use one of viewer, operator, editor, admin"):
        ids.set_role("bob", role)  # type: ignore[arg-type]
    assert ids.require_user("bob").role is Role.VIEWER


def test_set_role_takes_any_case(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    assert ids.set_role("alice", " Admin ").role is Role.ADMIN
    assert ids.set_role("alice", Role.EDITOR).role is Role.EDITOR


def test_a_user_name_is_taken_once(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice", "admin")
    with pytest.raises(ConfigError, match="user 'alice' exists already"):
        ids.add_user("alice")
    assert ids.require_user("alice").role is Role.ADMIN


def test_racing_adds_of_one_user_make_one(durable: Instance) -> None:
    ids = durable.identity
    for round_ in range(10):
        name = f"u{round_}"

        def add(i: int, name: str = name) -> None:
            ids.add_user(name, "viewer" if i else "admin")

        errors = race(2, add)
        assert len(errors) <= 1
        assert all(isinstance(e, ConfigError) and "exists already" in str(e) for e in errors)
        assert ids.user(name) is not None
    assert ids.count_users() == 10


def test_an_oidc_subject_belongs_to_one_user(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice", oidc_subject="sub-1")
    found = ids.user_by_oidc("sub-1")
    assert found is not None
    assert found.name == "alice"
    assert ids.user_by_oidc("sub-2") is None
    ids.add_user("bob")
    ids.link_oidc("bob", "sub-2")
    assert ids.require_user("bob").oidc_subject == "sub-2"
    with pytest.raises(ConfigError, match=r"subject .sub-1. is linked to user .alice. already"):
        ids.add_user("carol", oidc_subject="sub-1")
    assert ids.user("carol") is None
    with pytest.raises(ConfigError, match=r"subject .sub-1. is linked to user .alice. already"):
        ids.link_oidc("bob", "sub-1")
    assert ids.require_user("bob").oidc_subject == "sub-2"


def test_changing_an_unknown_user_says_how_to_list_them(durable: Instance) -> None:
    ids = durable.identity
    message = r"no user 'ghost'; list them with `conveyor users list`"
    for change in (
        lambda: ids.set_role("ghost", "admin"),
        lambda: ids.set_password("ghost", PASSWORD),
        lambda: ids.set_disabled("ghost", True),
        lambda: ids.link_oidc("ghost", "s"),
        lambda: ids.remove_user("ghost"),
        lambda: ids.require_user("ghost"),
    ):
        with pytest.raises(NotFoundError, match=message):
            change()


def test_remove_a_user_with_its_memberships_tokens_and_sessions(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice", password=PASSWORD)
    ids.add_user("bob")
    ids.add_group("quants")
    ids.add_member("quants", "alice")
    ids.add_member("quants", "bob")
    token, secret = ids.create_token("alice", "ci")
    session, _ = ids.create_session("alice")
    ids.remove_user("alice")
    assert ids.user("alice") is None
    assert ids.groups() == {"quants": ["bob"]}
    assert ids.token(token.id) is None
    assert ids.check_token(secret) is None
    assert ids.session(session) is None
    assert [u.name for u in ids.users()] == ["bob"]
    # The name is free again, and the new alice inherits nothing.
    ids.add_user("alice")
    assert ids.require_user("alice").groups == ()
    assert ids.tokens("alice") == []


# -- groups --------------------------------------------------------------------------------


def test_groups_and_members(durable: Instance) -> None:
    ids = durable.identity
    for name in ("alice", "bob"):
        ids.add_user(name)
    ids.add_group("quants")
    ids.add_group("empty")
    ids.add_member("quants", "bob")
    ids.add_member("quants", "alice")
    ids.add_member("quants", "alice")  # again: nothing changes
    assert ids.groups() == {"empty": [], "quants": ["alice", "bob"]}
    ids.remove_member("quants", "alice")
    assert ids.groups()["quants"] == ["bob"]
    with pytest.raises(NotFoundError, match="'alice' is not a member of group 'quants'"):
        ids.remove_member("quants", "alice")
    ids.remove_group("quants")
    assert ids.groups() == {"empty": []}
    assert ids.require_user("bob").groups == ()


def test_group_mistakes(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    ids.add_group("quants")
    with pytest.raises(ConfigError, match="group 'quants' exists already"):
        ids.add_group("quants")
    with pytest.raises(ConfigError, match="group name 'group:x': use letters"):
        ids.add_group("group:x")
    with pytest.raises(NotFoundError, match=r"no group 'ops'; make it with `conveyor groups add"):
        ids.add_member("ops", "alice")
    with pytest.raises(NotFoundError, match="no user 'ghost'"):
        ids.add_member("quants", "ghost")
    with pytest.raises(NotFoundError, match=r"no group 'ops'; list them with `conveyor groups"):
        ids.remove_group("ops")
    assert ids.groups() == {"quants": []}


def test_racing_adds_of_one_member_make_one_membership(durable: Instance) -> None:
    ids = durable.identity
    ids.add_group("g")
    for round_ in range(10):
        name = f"u{round_}"
        ids.add_user(name)

        def join(i: int, name: str = name) -> None:
            ids.add_member("g", name)

        assert race(2, join) == []
    assert ids.groups() == {"g": [f"u{i}" for i in range(10)]}


def test_racing_adds_of_one_group_make_one(durable: Instance) -> None:
    ids = durable.identity
    for round_ in range(10):
        name = f"g{round_}"

        def add(i: int, name: str = name) -> None:
            ids.add_group(name)

        errors = race(2, add)
        assert all(isinstance(e, ConfigError) and "exists already" in str(e) for e in errors)
    assert len(ids.groups()) == 10


# -- tokens --------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_hashed(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    token, secret = ids.create_token("alice", "ci deploys")
    assert secret.startswith(f"cvt_{token.id}_")
    assert len(secret) > 40
    assert (token.user_name, token.name, token.state()) == ("alice", "ci deploys", "active")
    assert token.expires_at is None
    assert token.last_used_at is None
    assert token.revoked_at is None
    with durable.db.read() as conn:
        stored = conn.execute(select(api_tokens)).one()
    assert secret not in [str(v) for v in stored]
    assert ids.token(token.id) == token


def test_check_token_finds_it_and_notes_its_last_use(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    token, secret = ids.create_token("alice", "ci")
    before = time.time()
    found = ids.check_token(secret)
    assert found is not None
    assert found.id == token.id
    used = ids.token(token.id)
    assert used is not None
    assert used.last_used_at is not None
    assert used.last_used_at >= before
    # Within a minute of the last use, a use writes nothing.
    ids.check_token(secret)
    again = ids.token(token.id)
    assert again is not None
    assert again.last_used_at == used.last_used_at


@pytest.mark.parametrize(
    "secret", ["", "cvt_", "cvt_abc_def", "Bearer x", "not-a-token", "cvt_" + "x" * 2000]
)
def test_check_token_of_a_wrong_secret_is_none(durable: Instance, secret: str) -> None:
    ids = durable.identity
    ids.add_user("alice")
    _, real = ids.create_token("alice", "ci")
    assert ids.check_token(secret) is None
    assert ids.check_token(real[:-1]) is None


def test_an_expired_and_a_revoked_token_are_found_in_their_state(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    short, short_secret = ids.create_token("alice", "short", expires_in=0.05)
    assert short.expires_at is not None
    assert short.state(short.expires_at - 1) == "active"
    assert short.state(short.expires_at) == "expired"
    gone, gone_secret = ids.create_token("alice", "gone", expires_in=3600)
    revoked = ids.revoke_token(gone.id)
    assert revoked.revoked_at is not None
    assert revoked.state() == "revoked"
    found = ids.check_token(gone_secret)
    assert found is not None
    assert found.state() == "revoked"
    assert found.last_used_at is None
    with pytest.raises(ConfigError, match=f"token '{gone.id}' was revoked already"):
        ids.revoke_token(gone.id)
    late = ids.check_token(short_secret)
    assert late is not None
    assert late.state(short.expires_at + 1) == "expired"


def test_tokens_are_listed_oldest_first_per_user_or_all(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    ids.add_user("bob")
    a1, _ = ids.create_token("alice", "one")
    b1, _ = ids.create_token("bob", "two")
    a2, _ = ids.create_token("alice", "three")
    assert [t.id for t in ids.tokens("alice")] == [a1.id, a2.id]
    assert [t.id for t in ids.tokens("bob")] == [b1.id]
    assert {t.id for t in ids.tokens()} == {a1.id, a2.id, b1.id}
    assert ids.tokens("ghost") == []


def test_token_mistakes(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    with pytest.raises(NotFoundError, match="no user 'ghost'"):
        ids.create_token("ghost", "ci")
    for name in ("", "x" * 256):
        with pytest.raises(ConfigError, match="a token needs a name"):
            ids.create_token("alice", name)
    for lifetime in (0, -5):
        with pytest.raises(ConfigError, match="a token's lifetime must be positive"):
            ids.create_token("alice", "ci", expires_in=lifetime)
    with pytest.raises(NotFoundError, match=r"no token 'nope'; list them with `conveyor tokens"):
        ids.revoke_token("nope")
    assert ids.tokens() == []


# -- sessions ------------------------------------------------------------------------------


def test_a_session_lives_until_it_ends_or_expires(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    secret, session = ids.create_session("alice", address="127.0.0.1")
    found = ids.session(secret)
    assert found == session
    assert found.address == "127.0.0.1"
    assert len(found.csrf) >= 32
    assert found.expires_at > time.time()
    with durable.db.read() as conn:
        assert secret not in [str(v) for v in conn.execute(select(sessions)).one()]
    assert ids.session("wrong") is None
    ids.end_session(secret)
    assert ids.session(secret) is None
    old, _ = ids.create_session("alice", ttl=-1)
    assert ids.session(old) is None


def test_sessions_are_each_their_own_and_end_all_at_once(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    ids.add_user("bob")
    one, s1 = ids.create_session("alice")
    two, s2 = ids.create_session("alice")
    bobs, _ = ids.create_session("bob")
    assert one != two
    assert s1.csrf != s2.csrf
    ids.end_sessions("alice")
    assert ids.session(one) is None
    assert ids.session(two) is None
    assert ids.session(bobs) is not None


def test_expired_sessions_are_deleted_as_new_ones_come(durable: Instance) -> None:
    ids = durable.identity
    ids.add_user("alice")
    ids.create_session("alice", ttl=-1)
    ids.create_session("alice")
    with durable.db.read() as conn:
        assert len(conn.execute(select(sessions)).all()) == 1


# -- access lists --------------------------------------------------------------------------


def test_access_changes_per_job_and_principal(durable: Instance) -> None:
    store = durable.access
    assert store.changes("etl") == {}
    assert store.all() == {}
    store.set("etl", "group:quants", [Permission.READ, Permission.OPERATE], by="admin")
    store.set("etl", "user:bob", [], by="admin")
    store.set("report", "user:alice", {Permission.WRITE}, by="admin")
    assert store.changes("etl") == {
        "group:quants": frozenset({Permission.READ, Permission.OPERATE}),
        "user:bob": frozenset(),
    }
    assert set(store.all()) == {"etl", "report"}
    # A second set replaces the first.
    store.set("etl", "group:quants", ["read"], by="root")  # type: ignore[list-item]
    assert store.changes("etl")["group:quants"] == frozenset({Permission.READ})


def test_reset_brings_back_the_codes_list(durable: Instance) -> None:
    store = durable.access
    store.set("etl", "user:a", [Permission.READ], by="admin")
    store.set("etl", "user:b", [Permission.READ], by="admin")
    store.set("other", "user:a", [Permission.READ], by="admin")
    assert store.reset("etl", "user:a") == 1
    assert store.reset("etl", "user:a") == 0
    assert list(store.changes("etl")) == ["user:b"]
    assert store.reset("etl") == 1
    assert store.changes("etl") == {}
    assert list(store.all()) == ["other"]


def test_an_unknown_permission_is_refused(durable: Instance) -> None:
    with pytest.raises(ValueError, match="'fly' is not a valid Permission"):
        durable.access.set("etl", "user:a", ["fly"], by="admin")  # type: ignore[list-item]
    assert durable.access.all() == {}


def test_racing_sets_of_one_grant_leave_one(durable: Instance) -> None:
    store = durable.access
    perms = [[Permission.READ], [Permission.OPERATE]]
    for round_ in range(10):
        job = f"job{round_}"

        def grant(i: int, job: str = job) -> None:
            store.set(job, "user:a", perms[i], by="x")

        assert race(2, grant) == []
        assert len(store.changes(job)) == 1
    assert len(store.all()) == 10


# -- audit log -----------------------------------------------------------------------------


def test_audit_entries_newest_first_with_everything_recorded(durable: Instance) -> None:
    log = durable.audit
    before = time.time()
    first = log.append("alice", "run.launch", "etl", detail={"run_id": "ab12"}, address="10.0.0.1")
    second = log.append("local admin", "user.add", "bob")
    assert second > first
    newest, oldest = log.entries()
    assert (newest.id, newest.actor, newest.action, newest.target) == (
        second,
        "local admin",
        "user.add",
        "bob",
    )
    assert newest.detail is None
    assert newest.address is None
    assert (oldest.detail, oldest.address) == ({"run_id": "ab12"}, "10.0.0.1")
    assert before <= oldest.at <= newest.at <= time.time()


def test_audit_filters_and_pages(durable: Instance) -> None:
    log = durable.audit
    ids = [
        log.append(f"user{i % 3}", "run.launch" if i % 2 else "run.cancel", f"job{i}")
        for i in range(10)
    ]
    assert [e.id for e in log.entries(actor="user0")] == [ids[9], ids[6], ids[3], ids[0]]
    assert [e.target for e in log.entries(action="run.cancel", limit=2)] == ["job8", "job6"]
    assert [e.id for e in log.entries(target="job4")] == [ids[4]]
    assert log.entries(actor="nobody") == []
    page1 = log.entries(limit=4)
    page2 = log.entries(limit=4, before_id=page1[-1].id)
    page3 = log.entries(limit=4, before_id=page2[-1].id)
    assert [e.id for e in page1 + page2 + page3] == ids[::-1]
    assert log.entries(since=time.time() + 60) == []
    assert len(log.entries(since=0)) == 10
    assert len(log.entries(limit=0)) == 1  # at least one per page
    assert len(log.entries(limit=10_000)) == 10


def test_audit_cuts_long_values_to_their_columns(durable: Instance) -> None:
    log = durable.audit
    log.append("a" * 300, "b" * 100, "c" * 600, address="d" * 100)
    [entry] = log.entries()
    assert (
        len(entry.actor),
        len(entry.action),
        len(entry.target or ""),
        len(entry.address or ""),
    ) == (
        255,
        64,
        512,
        64,
    )


def test_the_audit_store_cannot_change_or_delete_an_entry(durable: Instance) -> None:
    public = {name for name in dir(durable.audit) if not name.startswith("_")}
    assert public == {"append", "db", "entries"}


def test_racing_appends_all_land_with_distinct_ids(durable: Instance) -> None:
    log = durable.audit

    def append(i: int) -> None:
        log.append(f"u{i}", "x")

    assert race(8, append) == []
    assert len({e.id for e in log.entries()}) == 8
