"""The store's tables, in SQLAlchemy Core so SQLite and PostgreSQL share them."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 5  # 2: samples; 3: pages.recoveries, job_state; 4: http_stats; 5: pacing
APP_MARK = "enduro"

metadata = MetaData()

meta = Table(
    "enduro_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job", String(100), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_create_time", Float, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("ended_at", Float),
    # running / finished / failed / interrupted / dead
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
)

pages = Table(
    "pages",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("seq", Integer, nullable=False),
    # pending / leased / done / failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # infrastructure recoveries the page caused (browser crashes, rate limits...):
    # a budget apart from the attempts charged by errors about the page itself
    Column("recoveries", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_expires", Float),
    Column("available_at", Float, nullable=False, default=0.0),
    Column("updated_at", Float, nullable=False),
    Index("pages_claim", "job", "status", "seq"),
)

records = Table(
    "records",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("record_key", Text, primary_key=True),
    Column("page_key", Text, nullable=False),
    Column("page_seq", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Index("records_page", "job", "page_key"),
    Index("records_order", "job", "page_seq", "position"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("run_id", String(64)),
    Column("job", String(100)),
    Column("kind", String(32), nullable=False),
    Column("category", String(32)),
    Column("page_key", Text),
    Column("message", Text, nullable=False, default=""),
    Column("data", Text),
    Index("events_kind", "job", "kind"),
)

processes = Table(
    "processes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    # driver / browser
    Column("kind", String(16), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("create_time", Float, nullable=False),
    Column("pgid", Integer),
    Column("workdir", Text),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Index("processes_run", "run_id"),
)

samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Index("samples_run", "run_id", "ts"),
)

job_state = Table(
    "job_state",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

http_stats = Table(
    "http_stats",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("endpoint", Text, primary_key=True),
    Column("job", String(100), nullable=False),
    # {"requests", "ok", "retries", "errors": {category: n}, "latency": {bucket: n}}
    Column("data", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("http_stats_job", "job"),
)

pacing = Table(
    "pacing",
    metadata,
    # what is paced: "pages", or "http:" + a ctx.http endpoint
    Column("job", String(100), primary_key=True),
    Column("key", Text, primary_key=True),
    # the store-clock moment the next send may go, and no send before hold_until
    Column("next_at", Float, nullable=False),
    Column("hold_until", Float, nullable=False),
    # seconds between sends (0: unlimited), shared by every runner of the job
    Column("interval", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


def create_schema(conn: Connection, now: float) -> None:
    """Make every table in ``conn``'s database and mark it an enduro store of
    this schema, made at ``now`` (inside the caller's transaction)."""
    metadata.create_all(conn)
    conn.execute(
        meta.insert(),
        [
            {"key": "app", "value": APP_MARK},
            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            {"key": "created_at", "value": repr(now)},
        ],
    )
