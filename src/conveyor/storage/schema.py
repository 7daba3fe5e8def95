"""The SQL tables, as SQLAlchemy Core. Alembic migrations create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Indexes that migrations make on PostgreSQL only, and that are not in these tables: a GIN
# index of ``runs.tags`` as JSONB, for runs by tag (``tags @> '{"k": "v"}'``). SQLite
# has no such index, and cannot even describe one of an expression to compare.
POSTGRES_ONLY_INDEXES = frozenset({"ix_runs_tags"})

# Times are UTC epoch seconds (double precision): portable, compact, and
# cheap to order and compare on both SQLite and PostgreSQL.

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("job_name", String(255), nullable=False),
    Column("job_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("run_config", JSON, nullable=False),
    Column("selection", JSON),
    Column("trigger", String(255), nullable=False),
    Column("origin", JSON),
    Column("parent_run_id", String(32)),
    Column("root_run_id", String(32)),
    Column("error", Text),
    # Written every second by the process running the run, by the database's clock
    # (see storage.clock).
    Column("heartbeat_at", Float),
    # The fencing token: it grows with each start of the run, and every write of
    # the run's process carries it, so a process that lost the run cannot write.
    Column("token", Integer, nullable=False, server_default="0"),
    # How many batches of records the run's process has written (storage.journal): a
    # batch whose COMMIT landed unanswered is not written again.
    Column("batches", Integer, nullable=False, server_default="0"),
    # The process responsible for the run: its starter while it is starting, then
    # its run worker (see storage.hosts).
    Column("host", String(255)),
    Column("pid", Integer),
    Column("pid_started", Float),
    # The interval [start, end) the run processes (UTC epoch seconds), if any.
    Column("interval_start", Float),
    Column("interval_end", Float),
    # The key of a StaticPartitions the run processes, if any.
    Column("partition_key", String(255)),
    # Who or what started the run: ``user:NAME``, ``token:ID (NAME)``, ``schedule``,
    # ``chain``, ``sensor``, ``webhook``... (``None`` for runs made before migration 0009).
    Column("launched_by", String(255)),
    # The deployed version whose code the run ran, and the environment it ran in
    # (``None``: the workspace's files, as ``conveyor dev`` and ``job.run()`` run them).
    Column("deployed_version", Integer),
    Column("environment", String(64)),
    Index("ix_runs_job_name_created_at", "job_name", "created_at"),
    Index("ix_runs_job_name_interval_start", "job_name", "interval_start"),
    Index("ix_runs_job_name_partition_key", "job_name", "partition_key"),
    # The newest successful interval or end of a job (gap closing, freshness).
    Index("ix_runs_job_name_interval_end", "job_name", "interval_end"),
    Index("ix_runs_job_name_ended_at", "job_name", "ended_at"),
    Index("ix_runs_status_created_at", "status", "created_at"),
    # The queue: the jobs with queued runs, and each one's oldest (scheduler.launching).
    Index("ix_runs_status_job_name_created_at", "status", "job_name", "created_at"),
    # Every list of runs is newest first, paged by the key (created_at, id)
    # (storage.run_queries).
    Index("ix_runs_created_at_id", "created_at", "id"),
    Index("ix_runs_trigger_created_at", "trigger", "created_at"),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_root_run_id", "root_run_id"),
    Index("ix_runs_ended_at", "ended_at"),
    # On PostgreSQL, migration 0008 adds ix_runs_tags (``POSTGRES_ONLY_INDEXES``).
)

# One row per trigger firing. The unique key (trigger and tick time, or the
# upstream run for a chained trigger) is what makes every tick fire exactly
# once: the tick and its run are inserted in one transaction, so a second
# daemon, or a restarted one, fails on the key instead of launching again.
ticks = Table(
    "ticks",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("job_name", String(255), nullable=False),
    Column("trigger", String(255), nullable=False),
    Column("tick_at", Float, nullable=False),
    Column("run_id", String(32)),
    Column("created_at", Float, nullable=False),
    Index("ix_ticks_job_name_trigger_tick_at", "job_name", "trigger", "tick_at"),
)

# One row per run that reached a terminal status, written in the same transaction
# as the status change. The daemons read it in the order of ``id`` (a database
# sequence), not by a time of a clock that may be behind (scheduler.cursor).
run_ends = Table(
    "run_ends",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(32), nullable=False),
    Column("job_name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", Float, nullable=False),
)

# Each chained trigger (and each job's run retries) of a workspace, with the newest run
# end when a daemon first saw it: it fires for the ends after that one only, so a daemon
# started on a home full of old runs does not replay them (scheduler.chains). ``key``
# digests (workspace, job, trigger), which may be longer than a key column allows.
chains = Table(
    "chains",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("workspace", Text, nullable=False),
    Column("job_name", String(255), nullable=False),
    Column("trigger", String(255), nullable=False),
    Column("after_end", BigInteger, nullable=False),
    Column("seen_at", Float, nullable=False),
)

# Concurrency slots: a scope (job:<name>) has as many slots as its limit; a run
# holds one by inserting (scope, slot). A lease expires unless its holder's
# heartbeat renews it, so a dead holder frees its slot.
# Signals waiting for a job's next run, one per (job, kind): a refresh sent
# down the freshness graph stays here until that job's next run takes it.
signals = Table(
    "signals",
    metadata,
    Column("job_name", String(255), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("at", Float, nullable=False),
)

# Concurrency pools: how many runs, across all jobs naming the pool, at once.
pools = Table(
    "pools",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("limit", Integer, nullable=False),
)

# A sensor's cursor and when it was last evaluated, kept across daemon restarts.
sensor_state = Table(
    "sensor_state",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("cursor", Text),
    Column("evaluated_at", Float, nullable=False),
)

# Webhook calls waiting for the daemon, which fires one run per call per job.
webhook_calls = Table(
    "webhook_calls",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("path", String(512), nullable=False),
    Column("payload", JSON),
    Column("at", Float, nullable=False),
    Index("ix_webhook_calls_at", "at"),
)

leases = Table(
    "leases",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("slot", Integer, primary_key=True),
    # A run's id, or "<run id>/<task key>" for a task's pool slot.
    Column("holder", String(300), nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_leases_holder", "holder"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_key", String(255), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("task_name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("depends_on", JSON, nullable=False),
    Column("error_type", String(255)),
    Column("error_message", Text),
    Column("error_traceback", Text),
    Column("retry_wait", Float),
    # What the attempt ran with (its cpu= and memory=, a call's .set_resources() included).
    Column("cpu", Float),
    Column("memory", BigInteger),
)

events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("task_key", String(255)),
    Column("attempt", Integer),
    Column("at", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Index("ix_events_run_id_id", "run_id", "id"),
)

logs = Table(
    "logs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_key", String(255), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("stream", String(8), primary_key=True),
    # Small blobs live in the row (data); larger ones in the blob store (uri).
    Column("uri", Text),
    Column("data", LargeBinary),
    Column("size", BigInteger, nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_key", String(255), primary_key=True),
    Column("uri", Text),
    Column("data", LargeBinary),
    Column("size", BigInteger, nullable=False),
    Column("type_name", String(255), nullable=False),
)

# Timed triggers and sensors switched off (or back on) by hand: a row per one ever
# switched. ``owner`` is the job (or the sensor), ``trigger`` the trigger as the job's
# list spells it (``every:5m``; ``sensor:<name>`` for a sensor). ``changed_at``: when it
# was last switched; one switched back on fires from then on, not the ticks it missed.
trigger_state = Table(
    "trigger_state",
    metadata,
    Column("owner", String(255), primary_key=True),
    Column("trigger", String(255), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("changed_at", Float, nullable=False),
)

# Each scheduler daemon's health, written after its passes (scheduler.daemon).
daemon_status = Table(
    "daemon_status",
    metadata,
    Column("daemon_id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_pass_at", Float, nullable=False),
    Column("last_pass_seconds", Float, nullable=False),
    Column("passes", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("last_error_at", Float),
)

# Backfills, with the runs each queued: listed, watched and canceled as one.
backfills = Table(
    "backfills",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("job_name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    # requested, canceled or done (storage.backfills).
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Index("ix_backfills_created_at", "created_at"),
    Index("ix_backfills_job_name_created_at", "job_name", "created_at"),
)

backfill_runs = Table(
    "backfill_runs",
    metadata,
    Column(
        "backfill_id",
        String(32),
        ForeignKey("backfills.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_backfill_runs_run_id", "run_id"),
)

# Who may do what (storage.identity, storage.access, storage.audit, storage.secrets).
# A user signs in with a password (an argon2id hash) or through OpenID Connect
# (``oidc_subject``, the provider's ``iss`` and ``sub``); ``role`` is the instance role
# (viewer, operator, editor, admin: definitions.access.Role).
users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text),
    Column("email", String(255)),
    Column("oidc_subject", String(512), unique=True),
    Column("created_at", Float, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
)

groups = Table(
    "groups",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("created_at", Float, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column(
        "group_name", String(255), ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), primary_key=True
    ),
    Index("ix_group_members_user_name", "user_name"),
)

# API tokens: only the SHA-256 of the secret is kept (the secret is 32 random bytes,
# shown once); ``id`` is the public handle that lists and revocations name.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    Index("ix_api_tokens_user_name", "user_name"),
)

# Browser sessions: the cookie holds a random secret, the table its SHA-256, so a
# copy of the database opens no session. ``csrf`` is the session's CSRF token.
sessions = Table(
    "sessions",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("address", String(64)),
    Index("ix_sessions_user_name", "user_name"),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Access lists edited by an admin: each row replaces, for one job (or workload) and
# one principal (``user:NAME`` or ``group:NAME``), what the code's ``access=`` gives;
# an empty ``permissions`` list takes that principal's grant away.
job_access = Table(
    "job_access",
    metadata,
    Column("job_name", String(255), primary_key=True),
    Column("principal", String(255), primary_key=True),
    Column("permissions", JSON, nullable=False),
    Column("changed_at", Float, nullable=False),
    Column("changed_by", String(255), nullable=False),
)

# Who did what, when and from where. Append-only: storage.audit has no update or delete.
audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(512)),
    Column("detail", JSON),
    Column("address", String(64)),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
)

# Secrets, encrypted at rest (storage.secrets): the value is a Fernet token under the
# instance's key (CONVEYOR_SECRET_KEY, or a key file made with mode 0600).
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(255), nullable=False),
)

# Long-running workloads (services, apps, interactive jobs, Excel add-ins), one row each:
# what the code declares (``kind``, ``spec``), what a person asked for (``desired``:
# running or stopped), and what the supervisor that owns it (a lease with a fencing
# token, as for runs) last saw: its process, port, state, restarts and health.
workloads = Table(
    "workloads",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("desired", String(16), nullable=False),
    # stopped, starting, running, unhealthy, backoff, crash_loop, idle, stopping
    Column("state", String(16), nullable=False),
    Column("owner", String(64)),
    Column("lease_expires_at", Float),
    Column("token", Integer, nullable=False, server_default="0"),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("pid_started", Float),
    Column("port", Integer),
    Column("started_at", Float),
    Column("restarts", Integer, nullable=False, server_default="0"),
    Column("next_start_at", Float),
    Column("last_exit_code", Integer),
    Column("last_error", Text),
    Column("health", String(255)),
    Column("last_request_at", Float),
    Column("run_id", String(32)),
    Column("updated_at", Float, nullable=False),
)


# Deployed versions of the workspace's code: each an immutable, content-addressed archive
# in the blob store (``hash`` is the SHA-256 of the files it holds), numbered 1, 2, ...
# in the order they were first deployed. Deploying the same files again finds the row.
versions = Table(
    "versions",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("archive_uri", String(1024), nullable=False),
    Column("size", BigInteger, nullable=False),
    # The workspace inside the archive: a file or folder path relative to its root.
    Column("entry", String(1024), nullable=False),
    # What it defines: {"jobs": {name: {"version", "kind", "triggers", "tasks", ...}},
    # "workloads": [...]}, and what changed against the version deployed before it.
    Column("manifest", JSON, nullable=False),
    Column("diff", JSON, nullable=False),
    # The requirements it runs with (a requirements file's text), and their hash.
    Column("requirements", Text),
    Column("requirements_hash", String(64)),
    # {"commit": ..., "dirty": bool, "branch": ...} when deployed from a git checkout.
    Column("git", JSON),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255)),
    Column("message", Text),
)

# Each environment (dev, pre, prod...) and the version active in it. ``activations``
# counts the times a version became active there: the ``deployment:`` trigger's tick.
environments = Table(
    "environments",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("active_version", Integer, ForeignKey("versions.number")),
    Column("activations", Integer, nullable=False, server_default="0"),
    Column("updated_at", Float),
    Column("updated_by", String(255)),
)

# The history of each environment: every time a version became active in it, how
# (``deploy``, ``promote`` from another environment, ``rollback``) and by whom.
deployments = Table(
    "deployments",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("environment", String(64), nullable=False),
    Column("version", Integer, ForeignKey("versions.number"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_environment", String(64)),
    Column("previous_version", Integer),
    Column("activation", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("by", String(255)),
    Column("message", Text),
    Index("ix_deployments_environment_id", "environment", "id"),
)
