"""The PostgreSQL backend: a store that many runners on many hosts share.

Selected by a URL, ``postgresql://user@host:port/db`` (``postgres://`` and
``postgresql+psycopg://`` too), through SQLAlchemy Core and psycopg 3. What
differs from SQLite, and why (see ARCHITECTURE.md, "The store"):

- **Claims** choose their pages ``FOR UPDATE SKIP LOCKED`` and the update
  re-checks ``status = 'pending'``: under READ COMMITTED two claimers never
  wait on, or lease, the same page. Seeding takes a per-job advisory lock, so
  two seeders number their new pages without a gap or a tie.
- **Time is the database's**: the store reads ``clock_timestamp()`` when it
  opens and every :data:`CLOCK_RESYNC_SECONDS`, and carries it between reads on
  the runner's monotonic clock. Leases, heartbeats and the dead-run check of
  every runner are on that one clock, whatever the hosts' clocks say.
- **Outages are ridden out**: a statement that fails because the server went
  away (restart, failover, a dropped connection) is tried again, with backoff,
  for up to ``outage_seconds``; then it raises :class:`StoreError`. A commit
  whose answer was lost is checked, not guessed: a claim or a completion
  whose commit may have landed is looked up by the exact time it wrote.
- **Opening** refuses, without writing, a database that holds another
  program's tables, and names the cause of a refused connection in one line.
  Passwords never leave this module: :attr:`location` hides them (give them in
  ``PGPASSWORD`` or ``~/.pgpass`` rather than in the URL).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from enduro.errors import StoreError
from enduro.store import _schema as s
from enduro.store._base import Store
from enduro.store._rows import ClaimedPage, Clock, claimed_pages
from enduro.store._sql_log import SqlLog
from enduro.store._sql_pages import SqlPages

__all__ = [
    "CLOCK_RESYNC_SECONDS",
    "PostgresStore",
    "display_target",
    "open_postgres",
    "postgres_url",
]

log = logging.getLogger(__name__)

CLOCK_RESYNC_SECONDS = 30.0
OUTAGE_SECONDS = 120.0
RESTART_SECONDS = 60.0  # how long opening waits for a server that says it is restarting
_RESTART_TEXTS = ("starting up", "shutting down", "in recovery mode", "not yet accepting")
CONNECT_TIMEOUT_SECONDS = 10
SCHEMES = ("postgresql", "postgres")

# The advisory lock that serialises making the schema; any 64-bit number that
# another program is unlikely to use.
_SCHEMA_LOCK = int.from_bytes(hashlib.sha256(b"enduro schema").digest()[:8], "big", signed=True)

# Connection-level SQLSTATE classes and codes: the server went away or is not
# ready (08, 57P01-57P03), or the transaction lost a race it may simply retry.
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")
# Refusals that waiting does not cure.
_FATAL_TEXTS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
)


class _CommitUnknown(Exception):
    """The connection was lost while committing: the commit may have landed."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` means the server is (for now) out of reach."""
    if isinstance(exc, _CommitUnknown):
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state is not None:
        return any(state.startswith(t) for t in _TRANSIENT_STATES)
    message = str(exc.orig).lower()
    return not any(t in message for t in _FATAL_TEXTS)


_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


def _outlasting(method: _F) -> _F:
    """Run ``method`` again while the server is out of reach, up to the store's
    ``outage_seconds``; then raise :class:`StoreError`."""

    @functools.wraps(method)
    def call(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        return self._outlast(lambda: method(self, *args, **kwargs))

    return call  # type: ignore[return-value]


class DatabaseClock:
    """The database server's time, read every ``resync`` seconds and carried
    between reads on this process's monotonic clock (immune to steps of the
    host's wall clock). A failed read keeps carrying the last one."""

    def __init__(self, read: Callable[[], float], resync: float = CLOCK_RESYNC_SECONDS) -> None:
        self._read = read
        self._resync = resync
        self._lock = threading.Lock()
        self._anchor = (read(), time.monotonic())  # (server time, monotonic) of the last read

    def __call__(self) -> float:
        base, at = self._anchor
        if time.monotonic() - at >= self._resync and self._lock.acquire(blocking=False):
            try:
                self._anchor = (self._read(), time.monotonic())
            except DBAPIError:
                now = time.monotonic()
                self._anchor = (base + (now - at), now)  # try again in ``resync`` seconds
            finally:
                self._lock.release()
            base, at = self._anchor
        return base + (time.monotonic() - at)


def postgres_url(target: str | Path) -> URL:
    """The SQLAlchemy URL (psycopg 3 driver) of a ``postgresql://`` target.

    Raises:
        StoreError: the URL is malformed or names no database.
    """
    try:
        url = make_url(str(target))
    except ArgumentError as exc:
        raise StoreError(
            f"store URL {hidden(target)!r} is not a URL",
            "write postgresql://user@host:port/database",
        ) from exc
    backend, _, driver = url.drivername.partition("+")
    if backend not in SCHEMES or driver not in ("psycopg", ""):
        raise StoreError(
            f"store URL {hidden(target)!r} names driver {url.drivername!r}",
            "write postgresql://… (enduro uses psycopg 3)",
        )
    if not url.database:
        raise StoreError(
            f"store URL {hidden(target)!r} names no database",
            "write postgresql://user@host:port/database",
        )
    return url.set(drivername="postgresql+psycopg")


def display_target(target: str | Path) -> str:
    """A store target as it may be shown or logged: a PostgreSQL URL's password
    replaced by ``***``, anything else as it is."""
    text = str(target)
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    return hidden(text) if scheme in SCHEMES else text


def hidden(target: str | Path | URL) -> str:
    """``target`` with any password replaced by ``***``."""
    try:
        url = target if isinstance(target, URL) else make_url(str(target))
    except ArgumentError:
        return "<a malformed URL>"
    shown = url.set(drivername=url.drivername.partition("+")[0])
    return shown.render_as_string(hide_password=True)


class PostgresStore(SqlPages, SqlLog, Store):
    """The enduro store in a PostgreSQL database. Use :meth:`Store.open`."""

    serves_hosts = True

    def __init__(
        self,
        engine: Engine,
        url: URL,
        clock: Clock | None = None,
        *,
        outage_seconds: float = OUTAGE_SECONDS,
        flight_root: Path | None = None,
    ) -> None:
        self.outage_seconds = outage_seconds
        self._outage_logged = False
        super().__init__(engine, pg_insert, clock)
        if clock is None:
            self._clock = DatabaseClock(self._read_clock)
        self.url = url
        self.location = hidden(url)
        host = f"{url.host or 'localhost'}-{url.port or 5432}-{url.database}"
        self.flight_dir = (flight_root or Path.cwd()) / "enduro.flight" / host
        self.disk_dir = flight_root or Path.cwd()

    # ---- transactions that outlast an outage -------------------------------

    def _outlast(self, work: Callable[[], _T]) -> _T:
        retrying = Retrying(
            retry=retry_if_exception(lambda e: _transient(e) and not self._closed),
            stop=stop_after_delay(self.outage_seconds),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            before_sleep=self._waiting,
            reraise=True,
        )
        try:
            result = retrying(work)
        except (DBAPIError, _CommitUnknown) as exc:
            if not _transient(exc):
                raise
            cause = exc.cause if isinstance(exc, _CommitUnknown) else exc.orig
            raise StoreError(
                f"PostgreSQL at {self.location} out of reach for "
                f"{self.outage_seconds:.0f} s: {_first_line(cause)}",
                "start the database server; the run resumes where it stopped",
            ) from exc
        if self._outage_logged:
            self._outage_logged = False
            log.warning("PostgreSQL at %s is back", self.location)
        return result

    def _waiting(self, state: RetryCallState) -> None:
        if not self._outage_logged:
            self._outage_logged = True
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "PostgreSQL at %s out of reach (%s); waiting up to %.0f s",
                self.location,
                _first_line(exc),
                self.outage_seconds,
            )

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        if self._closed:
            raise RuntimeError("store is closed")
        with self._engine.connect() as conn:
            trans = conn.begin()
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(DBAPIError):
                    trans.rollback()
                raise
            if trans.is_active:
                try:
                    trans.commit()
                except DBAPIError as exc:
                    if _transient(exc):
                        raise _CommitUnknown(exc) from exc
                    raise

    def _greatest(self, *values: Any) -> Any:
        return func.greatest(*values)

    def _lock_job(self, conn: Connection, job: str) -> None:
        conn.execute(select(text("pg_advisory_xact_lock(hashtext(:job))")), {"job": job})

    def _lock_ready(self, ready: Select[Any]) -> Select[Any]:
        # Locked rows are skipped, so claimers never wait on each other; the
        # choice is materialised, so its LIMIT is applied once (a subquery in
        # ``IN (…)`` may be run again by the planner, leasing more pages).
        chosen = ready.with_for_update(skip_locked=True).cte("ready").prefix_with("MATERIALIZED")
        return select(chosen.c.key)

    def _read_clock(self) -> float:
        with self._engine.connect() as conn:
            return float(
                conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )

    # ---- the hot path: checked, not guessed, after a lost commit ------------

    @_outlasting
    def claim_many(
        self, job: str, owner: str, lease_seconds: float, limit: int
    ) -> list[ClaimedPage]:
        now = self._clock()
        try:
            return self._claim_at(job, owner, lease_seconds, limit, now)
        except _CommitUnknown:
            return self._outlast(lambda: self._claimed_at(job, owner, now))

    def _claimed_at(self, job: str, owner: str, now: float) -> list[ClaimedPage]:
        """The pages a claim at ``now`` by ``owner`` leased, if its commit landed."""
        p = s.pages.c
        query = (
            select(p.key, p.seq, p.attempts, p.recoveries)
            .where(p.job == job, p.status == "leased", p.lease_owner == owner, p.updated_at == now)
            .order_by(p.seq)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return claimed_pages(job, rows)

    @_outlasting
    def complete_rows(
        self,
        page: ClaimedPage,
        owner: str,
        rows: list[dict[str, Any]],
        new_pages: Sequence[str] = (),
        *,
        turn_at: float | None = None,
        took: float | None = None,
    ) -> bool:
        now = self._clock()
        try:
            return self._complete_at(page, owner, rows, new_pages, now, turn_at, took)
        except _CommitUnknown:
            return self._outlast(lambda: self._done_at(page, now))

    def _done_at(self, page: ClaimedPage, now: float) -> bool:
        p = s.pages.c
        with self._begin() as conn:
            found = conn.execute(
                select(p.key).where(
                    p.job == page.job, p.key == page.key, p.status == "done", p.updated_at == now
                )
            ).first()
        return found is not None


def _first_line(exc: BaseException | None) -> str:
    return (str(exc).strip().splitlines() or ["no answer"])[0] if exc is not None else "no answer"


# Every other method of the roles outlasts an outage as a whole (each is one
# transaction; run again, it does the same). ``iter_record_texts`` streams and
# is left as it is.
_PLAIN = {
    name
    for name in dir(Store)
    if not name.startswith("_")
    and callable(getattr(Store, name))
    # claim and complete go through claim_many and complete_rows
    and name not in {"open", "close", "claim", "complete", "iter_record_texts"}
    and name not in {"claim_many", "complete_rows"}
}
for _name in sorted(_PLAIN):
    _method = getattr(PostgresStore, _name)
    if not isinstance(_method, classmethod | staticmethod):
        setattr(PostgresStore, _name, _outlasting(_method))
del _name, _method


def _connect_error(url: URL, exc: DBAPIError) -> StoreError:
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    message = _first_line(exc.orig)
    low = message.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        return StoreError(
            f"{where} refused user {url.username!r}: wrong password",
            "check the user and the password (PGPASSWORD or ~/.pgpass)",
        )
    if "does not exist" in low and "database" in low:
        return StoreError(
            f"{where} has no database {url.database!r}",
            f"create it (createdb {url.database}) or name another in the URL",
        )
    if "does not exist" in low and "role" in low:
        return StoreError(f"{where} has no user {url.username!r}", "check the user in the URL")
    return StoreError(
        f"can't reach {where}: {message}",
        "check the host and port, and that the server is running",
    )


def open_postgres(
    target: str | Path, *, create: bool, clock: Clock | None, read_only: bool = False
) -> Store:
    """The ``postgresql`` backend's opener (see :func:`~enduro.store.register_backend`).

    Raises:
        StoreError: psycopg is not installed; the server can't be reached or
            refuses the login; the database holds another program's tables, no
            store (``create=False``), or a newer enduro's; nothing is written.
            ``read_only``: also a store an older enduro made.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            "the PostgreSQL store needs psycopg 3", "pip install 'enduro[postgres]'"
        ) from exc
    url = postgres_url(target)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=16,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "enduro-reader" if read_only else "enduro",
            # a reader's every transaction is read only: the server refuses its writes
            **({"options": "-c default_transaction_read_only=on"} if read_only else {}),
        },
    )

    def prepare() -> None:
        with engine.begin() as conn:
            if read_only:
                _check_schema(conn, url)
                return
            conn.execute(select(text("pg_advisory_xact_lock(:k)")), {"k": _SCHEMA_LOCK})
            _prepare_schema(conn, url, create, clock or time.time)

    # A server that answers "starting up" or "shutting down" is being restarted
    # (a runner's supervisor started it again at that instant): wait it out,
    # the refused connections between its stop and its start included. A
    # server that can't be reached at all is a wrong URL until proven otherwise.
    said_so: list[bool] = []

    def in_restart(exc: BaseException) -> bool:
        if _restarting(exc):
            said_so.append(True)
            return True
        return bool(said_so) and _transient(exc)

    restarting = Retrying(
        retry=retry_if_exception(in_restart),
        stop=stop_after_delay(RESTART_SECONDS),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        before_sleep=lambda state: log.warning(
            "PostgreSQL at %s:%s is restarting; waiting", url.host, url.port or 5432
        ),
        reraise=True,
    )
    try:
        restarting(prepare)
    except DBAPIError as exc:
        engine.dispose()
        raise _connect_error(url, exc) from exc
    except StoreError:
        engine.dispose()
        raise
    return PostgresStore(engine, url, clock)


def _restarting(exc: BaseException) -> bool:
    """Whether ``exc`` is the server saying it is starting up or shutting down
    (SQLSTATE 57P03, cannot_connect_now; libpq gives connection errors as text)."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "57P03":
        return True
    message = str(exc.orig).lower()
    return any(f"the database system is {what}" in message for what in _RESTART_TEXTS)


def _check_schema(conn: Connection, url: URL) -> None:
    """Refuse, for a reader, what is not a store of this enduro's schema."""
    name = f"database {url.database!r} at {url.host or 'localhost'}"
    if s.meta.name not in set(inspect(conn).get_table_names()):
        raise StoreError(f"no enduro store in {name}", "check the URL, or run a job first")
    marks = {str(k): str(v) for k, v in conn.execute(select(s.meta.c.key, s.meta.c.value))}
    if marks.get("app") != s.APP_MARK or "schema_version" not in marks:
        raise StoreError(f"{name} is not an enduro store", "check the URL")
    version = int(marks["schema_version"])
    if version != s.SCHEMA_VERSION:
        newer = version > s.SCHEMA_VERSION
        raise StoreError(
            f"store in {name} has the {'newer' if newer else 'older'} schema {version}",
            "upgrade enduro" if newer else f"upgrade it first: enduro status {hidden(url)}",
        )


def _prepare_schema(conn: Connection, url: URL, create: bool, clock: Clock) -> None:
    """Check (or make, under the schema lock) the store's tables in ``conn``'s database."""
    tables = set(inspect(conn).get_table_names())
    name = f"database {url.database!r} at {url.host or 'localhost'}"
    if s.meta.name not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise StoreError(
                f"{name} holds another program's tables ({shown}), not an enduro store",
                "give an empty database or an enduro store",
            )
        if not create:
            raise StoreError(f"no enduro store in {name}", "check the URL, or run a job first")
        s.create_schema(conn, clock())
        return
    marks = {str(k): str(v) for k, v in conn.execute(select(s.meta.c.key, s.meta.c.value))}
    if marks.get("app") != s.APP_MARK or "schema_version" not in marks:
        raise StoreError(f"{name} is not an enduro store", "give an empty database or a store")
    version = int(marks["schema_version"])
    if version > s.SCHEMA_VERSION:
        raise StoreError(
            f"store in {name} has schema {version}, newer than this enduro's {s.SCHEMA_VERSION}",
            "upgrade enduro",
        )
    if version < s.SCHEMA_VERSION:
        s.metadata.create_all(conn)  # from version 4 on, versions only add tables
        conn.execute(
            update(s.meta)
            .where(s.meta.c.key == "schema_version")
            .values(value=str(s.SCHEMA_VERSION))
        )
