"""What a reader following a running job needs (the dashboard), on every backend:
the log after a given id, a page's records, the page latency in ``page_done``,
and a read-only opening that the database itself holds to."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from enduro.errors import StoreError
from enduro.store import Store
from enduro.store import _schema as s
from tests.store._helpers import JOB, FakeClock, claim


def test_events_after_follow_the_log_in_pages_of_a_limit(store: Store) -> None:
    for n in range(5):
        store.add_event("error", f"e{n}", job=JOB, category="network", ts=float(n))

    first = store.events_after(0, limit=3)
    rest = store.events_after(first[-1]["id"], limit=3)

    assert [e["message"] for e in first] == ["e0", "e1", "e2"]
    assert [e["message"] for e in rest] == ["e3", "e4"]
    assert store.events_after(rest[-1]["id"]) == []
    assert {"id", "ts", "run_id", "job", "kind", "category", "page_key", "data"} <= set(first[0])


def test_samples_after_carry_their_id_run_time_and_pages(store: Store) -> None:
    store.add_sample("run-a", 10.0, 3, {"cpu_percent": 50.0})
    store.add_sample("run-b", 11.0, 4, {"cpu_percent": 60.0})

    both = store.samples_after(0)
    later = store.samples_after(both[0]["id"])

    assert [(s["run_id"], s["ts"], s["pages"], s["cpu_percent"]) for s in both] == [
        ("run-a", 10.0, 3, 50.0),
        ("run-b", 11.0, 4, 60.0),
    ]
    assert [s["run_id"] for s in later] == ["run-b"]


def test_page_records_are_one_page_s_in_order_up_to_a_limit(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    rows = [{"id": f"r{n}", "n": n} for n in range(4)]
    assert store.complete(claim(store), "run-a", rows, "id")
    assert store.complete(claim(store), "run-a", [{"id": "other"}], "id")

    assert store.page_records(JOB, "1", limit=3) == rows[:3]
    assert store.page_records(JOB, "2") == [{"id": "other"}]
    assert store.page_records(JOB, "3") == []


def test_page_done_keeps_the_attempt_s_seconds(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)

    assert store.complete_rows(page, "run-a", [], took=1.23456)

    (done,) = store.events(JOB, "page_done")
    assert json.loads(done["data"])["took"] == pytest.approx(1.2346)


def test_a_reader_sees_what_the_writer_commits_and_may_not_write(
    store_target: str, clock: FakeClock
) -> None:
    with Store.open(store_target, clock=clock) as writer:
        writer.seed_pages(JOB, ["1", "2"])
        with Store.open(store_target, read_only=True) as reader:
            assert reader.page_counts(JOB)["pending"] == 2
            assert writer.complete(claim(writer), "run-a", [{"id": "a"}], "id")
            assert reader.page_counts(JOB)["done"] == 1  # no snapshot held between reads

            with pytest.raises(DBAPIError):
                reader.seed_pages(JOB, ["3"])
            with pytest.raises(DBAPIError):
                reader.add_event("note", "a reader wrote this", job=JOB)
        assert writer.page_counts(JOB)["total"] == 2
        assert writer.events(kind="note") == []


def test_a_read_under_way_holds_up_no_writer(store_target: str) -> None:
    """A reader's transaction takes no write lock (SQLite: a deferred BEGIN in WAL
    mode): a writer commits while it is open, instead of waiting for it to end."""
    with Store.open(store_target) as writer, Store.open(store_target, read_only=True) as reader:
        writer.seed_pages(JOB, ["1"])
        committed = threading.Event()

        def write() -> None:
            writer.seed_pages(JOB, ["2"])
            committed.set()

        with reader._begin() as conn:  # type: ignore[attr-defined]  # a read under way
            assert conn.execute(select(func.count()).select_from(s.pages)).scalar_one() == 1
            thread = threading.Thread(target=write)
            thread.start()
            # a write lock held here would keep the writer waiting (busy timeout 30 s)
            assert committed.wait(10), "the writer waited for the reader's transaction"
        thread.join()
        assert reader.page_counts(JOB)["total"] == 2


def test_a_reader_needs_a_store_that_exists(store_target: str) -> None:
    with pytest.raises(StoreError, match=r"no (enduro )?store"):
        Store.open(store_target, read_only=True)
