"""What only the PostgreSQL backend does: URLs and refusals at opening, the
database's clock, one transaction per page under a real trigger, an outage of
the server ridden out, and a lost commit answer checked rather than guessed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from enduro.errors import StoreError
from enduro.store import PostgresStore, Store
from enduro.store import _postgres as pg
from tests._postgres import PASSWORD, PostgresServer, running_server
from tests.store._helpers import JOB, LEASE, claim, records, status


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    with Store.open(pg_url) as store:
        assert isinstance(store, PostgresStore)
        yield store


# --- opening ----------------------------------------------------------------------------


def test_every_spelling_of_the_url_opens_the_same_store(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        store.seed_pages(JOB, ["1"])
    for spelling in ("postgres://", "postgresql+psycopg://"):
        with Store.open(pg_url.replace("postgresql://", spelling), create=False) as store:
            assert store.page_counts(JOB)["total"] == 1


def test_location_hides_the_password(pg_store: PostgresStore) -> None:
    assert PASSWORD not in pg_store.location
    assert "***" in pg_store.location
    assert pg_store.location.startswith("postgresql://enduro:***@127.0.0.1:")


def test_another_driver_is_refused(pg_url: str) -> None:
    with pytest.raises(StoreError, match="names driver 'postgresql\\+psycopg2'"):
        Store.open(pg_url.replace("postgresql://", "postgresql+psycopg2://"))


def test_a_url_without_a_database_is_refused(pg_server: PostgresServer) -> None:
    with pytest.raises(StoreError, match="names no database"):
        Store.open(pg_server.url("").rstrip("/"))


def test_an_unreachable_server_is_named(pg_server: PostgresServer) -> None:
    closed = pg_server.url("x").replace(f":{pg_server.port}/", ":1/")
    with pytest.raises(StoreError) as caught:
        Store.open(closed)
    assert str(caught.value.args[0]).startswith("can't reach PostgreSQL at 127.0.0.1:1")
    assert PASSWORD not in str(caught.value)


def test_wrong_credentials_are_named_without_the_password(pg_url: str) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(StoreError, match="refused user 'enduro': wrong password") as caught:
        Store.open(wrong)
    assert "not-the-password" not in str(caught.value)


def test_a_missing_database_is_named(pg_server: PostgresServer) -> None:
    with pytest.raises(StoreError, match="has no database 'nowhere'"):
        Store.open(pg_server.url("nowhere"))


def test_another_programs_tables_are_refused_and_left_alone(
    pg_server: PostgresServer, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    pg_server.sql("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (7)", database)

    with pytest.raises(StoreError, match=r"holds another program's tables \(invoices\)"):
        Store.open(pg_url)

    tables = pg_server.sql(
        "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'", database
    )
    assert tables == "invoices"
    assert pg_server.sql("SELECT id FROM invoices", database) == "7"


def test_an_empty_database_is_not_made_a_store_when_create_is_false(
    pg_server: PostgresServer, pg_url: str
) -> None:
    with pytest.raises(StoreError, match="no enduro store in database"):
        Store.open(pg_url, create=False)
    database = pg_url.rsplit("/", 1)[1]
    assert (
        pg_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database) == "0"
    )


def test_a_newer_enduros_store_is_refused(pg_server: PostgresServer, pg_url: str) -> None:
    Store.open(pg_url).close()
    database = pg_url.rsplit("/", 1)[1]
    pg_server.sql("UPDATE enduro_meta SET value = '99' WHERE key = 'schema_version'", database)

    with pytest.raises(StoreError, match="has schema 99, newer than this enduro's"):
        Store.open(pg_url)


def test_three_openers_at_once_make_one_schema(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            Store.open(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# --- time ---------------------------------------------------------------------------


def test_leases_are_on_the_databases_clock_not_the_hosts(
    pg_server: PostgresServer, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600.0)  # this host's clock is an hour off
    pg_store.seed_pages(JOB, ["1"])

    claim(pg_store)

    server_now = float(pg_server.sql("SELECT extract(epoch FROM clock_timestamp())"))
    leased_at = float(status(pg_store, "1")["lease_expires"]) - LEASE
    assert abs(leased_at - server_now) < 5.0


def test_the_database_clock_reads_again_and_keeps_going_when_a_read_fails() -> None:
    server = {"now": 100.0, "up": True}

    def read() -> float:
        if not server["up"]:
            raise DBAPIError("SELECT", None, Exception("gone"))
        return server["now"]

    between_reads = pg.DatabaseClock(read, resync=3600.0)
    every_call = pg.DatabaseClock(read, resync=0.0)
    server["now"] = 500.0

    assert 100.0 <= between_reads() < 101.0  # carried on the monotonic clock
    assert 500.0 <= every_call() < 501.0  # read again
    server["up"] = False
    assert 500.0 <= every_call() < 501.0  # a failed read carries the last one on


# --- transactions ---------------------------------------------------------------


def test_complete_is_one_transaction(pg_server: PostgresServer, pg_url: str) -> None:
    """A failure while inserting records rolls back the done mark and the deletion."""
    with Store.open(pg_url) as store:
        store.seed_pages(JOB, ["1"])
        assert store.complete(claim(store), "run-a", [{"id": "old"}], "id")
        store.requeue(JOB, keys=["1"])
        page = claim(store)
        pg_server.sql(
            "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN "
            "IF NEW.record_key = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql; "
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON records "
            "FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
            pg_url.rsplit("/", 1)[1],
        )

        with pytest.raises(DBAPIError, match="boom refused"):
            store.complete(page, "run-a", [{"id": "new"}, {"id": "boom"}], "id")

        row = status(store, "1")
        assert (row["status"], row["lease_owner"]) == ("leased", "run-a")
        assert records(store) == [{"id": "old"}]


def _losing_commit_answers(
    store: PostgresStore, after_commit: bool
) -> contextlib.AbstractContextManager[Any]:
    """Make the store's next commit look lost: raised before it (nothing written)
    or after it (written, but the answer never came)."""
    real = store._begin

    @contextlib.contextmanager
    def begin() -> Iterator[Any]:
        store._begin = real  # type: ignore[method-assign]
        lost = pg._CommitUnknown(RuntimeError("server closed the connection"))
        if after_commit:
            with real() as conn:
                yield conn
            raise lost
        with real():
            raise lost
        yield  # pragma: no cover

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        store._begin = begin  # type: ignore[method-assign]
        try:
            yield
        finally:
            store._begin = real  # type: ignore[method-assign]

    return patched()


def test_a_claim_whose_commit_answer_was_lost_returns_what_it_leased(
    pg_store: PostgresStore,
) -> None:
    pg_store.seed_pages(JOB, ["1", "2", "3"])

    with _losing_commit_answers(pg_store, after_commit=True):
        got = pg_store.claim_many(JOB, "run-a", LEASE, 2)

    assert [p.key for p in got] == ["1", "2"]
    assert status(pg_store, "3")["status"] == "pending"


def test_a_claim_whose_commit_never_happened_leases_nothing(pg_store: PostgresStore) -> None:
    pg_store.seed_pages(JOB, ["1", "2"])

    with _losing_commit_answers(pg_store, after_commit=False):
        got = pg_store.claim_many(JOB, "run-a", LEASE, 1)

    assert got == []
    assert [status(pg_store, k)["status"] for k in ("1", "2")] == ["pending", "pending"]
    assert claim(pg_store).key == "1"  # the next claim takes it


def test_a_completion_whose_commit_answer_was_lost_is_reported_done(
    pg_store: PostgresStore,
) -> None:
    pg_store.seed_pages(JOB, ["1"])
    page = claim(pg_store)

    with _losing_commit_answers(pg_store, after_commit=True):
        assert pg_store.complete(page, "run-a", [{"id": "r"}], "id")

    assert status(pg_store, "1")["status"] == "done"
    assert records(pg_store) == [{"id": "r"}]


# --- outages ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, which its tests stop and start."""
    with running_server() as server:
        yield server


def test_a_server_restart_is_waited_out(own_server: PostgresServer) -> None:
    url = own_server.new_database()
    with Store.open(url) as store:
        store.seed_pages(JOB, ["1", "2"])
        page = claim(store)
        own_server.stop()
        started = threading.Event()

        def start_later() -> None:
            started.wait()
            own_server.start()

        starter = threading.Thread(target=start_later)
        starter.start()
        calls: list[str] = []
        original = store._complete_at

        def counting(*args: Any) -> bool:
            calls.append("try")
            if len(calls) == 2:
                started.set()  # the server comes back only after a try has failed
            return original(*args)

        store._complete_at = counting  # type: ignore[method-assign]
        try:
            assert store.complete(page, "run-a", [{"id": "a"}], "id")
        finally:
            starter.join()

        assert len(calls) >= 2
        assert status(store, "1")["status"] == "done"
        assert claim(store).key == "2"


def test_an_outage_longer_than_the_store_waits_is_one_clear_error(
    own_server: PostgresServer,
) -> None:
    url = own_server.new_database()
    with Store.open(url) as store:
        assert isinstance(store, PostgresStore)
        store.outage_seconds = 1.0
        store.seed_pages(JOB, ["1"])
        own_server.stop()
        try:
            with pytest.raises(StoreError, match="out of reach for 1 s") as caught:
                store.page_counts(JOB)
            assert PASSWORD not in str(caught.value)
        finally:
            own_server.start()
        assert store.page_counts(JOB)["total"] == 1  # and carries on once it is back


def test_opening_while_the_server_shuts_down_for_a_restart_waits_it_out(
    own_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A smart shutdown waits for its clients to leave and, meanwhile, answers
    # every new connection "the database system is shutting down" (57P03): the
    # instant a supervisor's runner opens its store during a restart.
    import psycopg

    url = own_server.new_database()
    with Store.open(url) as store:
        store.seed_pages(JOB, ["1", "2"])
    held = psycopg.connect(url)
    stopper = threading.Thread(target=own_server.stop, args=("smart",))
    stopper.start()
    deadline = time.monotonic() + 30
    while True:  # until the server refuses new connections: the shutdown is under way
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            assert "shutting down" in str(exc), exc
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    opened: list[Store] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Store.open(url, create=False))
        except BaseException as exc:
            failed.append(exc)

    with caplog.at_level("WARNING", logger="enduro.store._postgres"):
        opener = threading.Thread(target=open_store)
        opener.start()
        deadline = time.monotonic() + 30
        while "is restarting; waiting" not in caplog.text:  # it met the shutdown
            assert time.monotonic() < deadline and not failed, failed
            time.sleep(0.05)
        held.close()  # the shutdown completes ...
        stopper.join()
        waits = caplog.text.count("is restarting; waiting")
        while caplog.text.count("is restarting; waiting") == waits:  # ... and it is refused
            assert time.monotonic() < deadline + 30 and not failed, failed
            time.sleep(0.05)
        own_server.start()  # ... until the server is started again
        opener.join(timeout=90)

    assert failed == [] and len(opened) == 1
    with opened[0] as store:
        assert store.page_counts(JOB)["total"] == 2
