"""What every store backend must do (parametrised over ``conftest.BACKENDS``):
leases, atomic completion, retries, runs, events, state — and, with several
processes claiming from one store at once, no page leased twice."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from enduro.errors import BadRecords
from enduro.store import Store, dumps_record
from enduro.store import _schema as s
from tests.store import _workers
from tests.store._helpers import JOB, LEASE, FakeClock, claim, pages, records, status

# --- opening ----------------------------------------------------------------------------


def test_reopening_keeps_the_data(store_target: str) -> None:
    with Store.open(store_target) as store:
        store.seed_pages(JOB, ["1", "2"])
        page = claim(store)
        assert store.complete(page, "run-a", [{"id": "r1"}], "id")

    with Store.open(store_target, create=False) as store:
        assert store.page_counts(JOB) == {
            "pending": 1,
            "leased": 0,
            "done": 1,
            "failed": 0,
            "total": 2,
        }
        assert records(store) == [{"id": "r1"}]


def test_close_twice_is_safe_and_use_after_close_raises(store_target: str) -> None:
    store = Store.open(store_target)
    store.seed_pages(JOB, ["1"])
    store.close()
    store.close()

    with pytest.raises(RuntimeError, match="closed"):
        store.claim(JOB, "run-a", LEASE)
    with pytest.raises(RuntimeError, match="closed"):
        store.seed_pages(JOB, ["2"])


def test_context_manager_closes(store_target: str) -> None:
    with Store.open(store_target) as store:
        store.seed_pages(JOB, ["1"])

    with pytest.raises(RuntimeError, match="closed"):
        store.page_counts(JOB)


# --- seeding and claiming -------------------------------------------------------------


def test_seed_pages_is_idempotent_and_keeps_order(store: Store) -> None:
    assert store.seed_pages(JOB, ["3", "1", "2"]) == 3
    assert store.seed_pages(JOB, ["3", "1", "2"]) == 0
    assert store.seed_pages(JOB, ["1", "4", "3"]) == 1

    assert store.page_counts(JOB)["total"] == 4
    claimed = [claim(store).key for _ in range(4)]
    assert claimed == ["3", "1", "2", "4"]
    assert store.claim(JOB, "run-a", LEASE) is None


def test_jobs_are_seeded_separately(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])

    assert store.seed_pages("other", ["1", "2"]) == 2
    assert store.jobs() == [JOB, "other"]
    assert store.page_counts(JOB)["total"] == 2


def test_claim_leases_pages_in_seq_order(store: Store, clock: FakeClock) -> None:
    store.seed_pages(JOB, ["b", "a", "c"])

    first = claim(store, "run-a")
    second = claim(store, "run-b")

    assert (first.key, first.seq, first.attempts) == ("b", 0, 0)
    assert (second.key, second.seq) == ("a", 1)
    row = status(store, "b")
    assert row["status"] == "leased"
    assert row["lease_owner"] == "run-a"
    assert row["lease_expires"] == clock.now + LEASE
    assert status(store, "a")["lease_owner"] == "run-b"
    assert status(store, "c")["status"] == "pending"


def test_claim_never_hands_a_page_to_two_owners(store_target: str) -> None:
    keys = [str(n) for n in range(120)]
    with Store.open(store_target) as store:
        store.seed_pages(JOB, keys)

    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        mine: list[str] = []
        try:
            with Store.open(store_target) as own_store:  # its own connection
                while (page := own_store.claim(JOB, owner, LEASE)) is not None:
                    mine.append(page.key)
        except BaseException as exc:
            errors.append(exc)
        claimed[owner] = mine

    threads = [threading.Thread(target=worker, args=(f"run-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    every_claim = [key for mine in claimed.values() for key in mine]
    assert sorted(every_claim, key=int) == keys  # each page exactly once
    with Store.open(store_target) as store:
        for owner, mine in claimed.items():
            # Each owner got its pages in seq order, and the store agrees who holds them.
            assert mine == sorted(mine, key=int)
            for key in mine:
                assert status(store, key)["lease_owner"] == owner


# --- completing ---------------------------------------------------------------------


def test_complete_writes_records_and_done(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    page = claim(store)
    records = [{"id": "x", "name": "Zoë"}, {"id": "y", "n": 2}]

    assert store.complete(page, "run-a", records, "id") is True

    row = status(store, "1")
    assert row["status"] == "done"
    assert row["attempts"] == 1
    assert row["lease_owner"] is None
    assert row["lease_expires"] is None
    assert list(store.iter_record_texts(JOB)) == [dumps_record(r) for r in records]
    assert store.record_count(JOB) == 2
    assert store.page_counts(JOB)["done"] == 1


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([{"id": "x"}, {"other": 1}], id="missing-key"),
        pytest.param([{"id": "x"}, {"id": None}], id="null-key"),
        pytest.param([{"id": "x"}, "not a dict"], id="not-a-dict"),
        pytest.param([{"id": "x", "bad": object()}], id="not-json"),
        pytest.param({"id": "x"}, id="not-a-list"),
    ],
)
def test_complete_with_bad_records_writes_nothing(store: Store, records: object) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)

    with pytest.raises(BadRecords):
        store.complete(page, "run-a", records, "id")  # type: ignore[arg-type]

    row = status(store, "1")
    assert row["status"] == "leased"
    assert row["lease_owner"] == "run-a"
    assert row["attempts"] == 0
    assert store.record_count() == 0


def test_completing_a_page_again_replaces_its_records(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    page = claim(store)
    assert store.complete(page, "run-a", [{"id": "a"}, {"id": "b"}, {"id": "c", "v": 1}], "id")
    other = claim(store)
    assert store.complete(other, "run-a", [{"id": "z"}], "id")

    assert store.requeue(JOB, keys=["1"]) == 1
    again = claim(store)
    assert again.key == "1"
    assert store.complete(again, "run-a", [{"id": "c", "v": 2}], "id")

    assert records(store) == [{"id": "c", "v": 2}, {"id": "z"}]
    assert store.record_count(JOB) == 2


def test_a_record_key_moves_between_pages(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    first = claim(store)
    assert store.complete(first, "run-a", [{"id": "a"}, {"id": "m", "on": 1}], "id")
    second = claim(store)
    assert store.complete(second, "run-a", [{"id": "m", "on": 2}, {"id": "b"}], "id")

    # Keys are unique within the job: "m" now belongs to page 2, at page 2's place.
    assert records(store) == [{"id": "a"}, {"id": "m", "on": 2}, {"id": "b"}]
    # ... and the move is on the record, with both pages, in the page's transaction
    (moved,) = store.events(JOB, kind="key_moved")
    assert (moved["run_id"], moved["page_key"]) == ("run-a", "2")
    assert json.loads(moved["data"]) == {"record_key": "m", "from": "1", "to": "2"}
    assert moved["message"] == "record m moved from page 1 to page 2"
    assert store.event_counts(JOB)["key_moved"] == 1

    # Page 1 done again without "m" must not take page 2's record with it.
    store.requeue(JOB, keys=["1"])
    again = claim(store)
    assert store.complete(again, "run-a", [{"id": "a"}], "id")
    assert records(store) == [{"id": "a"}, {"id": "m", "on": 2}, {"id": "b"}]
    # a page done again keeps its own keys: no move
    store.requeue(JOB, keys=["2"])
    assert store.complete(claim(store), "run-a", [{"id": "m", "on": 2}, {"id": "b"}], "id")
    assert store.event_counts(JOB)["key_moved"] == 1


def test_a_lost_commit_records_no_key_move(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    assert store.complete(claim(store), "run-a", [{"id": "m"}], "id")
    second = claim(store, "run-b")
    assert not store.complete(second, "run-a", [{"id": "m"}], "id")  # not its lease
    assert "key_moved" not in store.event_counts(JOB)
    assert records(store) == [{"id": "m"}]


def test_top_errors_give_each_category_its_most_frequent_first_line(store: Store) -> None:
    def error(category: str, message: str, page: str, job: str = JOB) -> None:
        store.add_event("error", job=job, category=category, message=message, page_key=page)

    for page in ("7", "3", "9"):
        error("handler_bug", f"ValueError: no rows on page {page}\nTraceback line", page)
    error("handler_bug", "KeyError: 'id'", "4")
    error("network", "connection reset", "5")
    error("network", "connection reset", "6", job="other")

    top = store.top_errors(JOB)

    assert top == {
        # one kind of message whatever its numbers; the earliest one shows it
        "handler_bug": {
            "message": "ValueError: no rows on page 7",
            "count": 3,
            "page": "7",
            "errors": 4,
        },
        "network": {"message": "connection reset", "count": 1, "page": "5", "errors": 1},
    }
    assert store.top_errors()["network"]["count"] == 2  # every job's


def test_each_completion_leaves_one_page_done_event_in_its_transaction(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    first, second = claim(store, "run-a"), claim(store, "run-b")
    assert store.complete(first, "run-a", [{"id": "a"}, {"id": "b"}], "id")
    assert not store.complete(second, "run-a", [{"id": "c"}], "id")  # not its lease

    done = store.events(JOB, kind="page_done")

    assert [(e["run_id"], e["page_key"], json.loads(e["data"])) for e in done] == [
        ("run-a", "1", {"records": 2})
    ]


def test_complete_with_the_wrong_owner_writes_nothing(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store, "run-a")

    assert store.complete(page, "run-b", [{"id": "x"}], "id") is False

    row = status(store, "1")
    assert row["status"] == "leased"
    assert row["lease_owner"] == "run-a"
    assert row["attempts"] == 0
    assert store.record_count() == 0
    # The store is still usable, and the real owner can finish the page.
    assert store.complete(page, "run-a", [{"id": "x"}], "id") is True
    assert records(store) == [{"id": "x"}]


def test_records_are_kept_per_job(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    store.seed_pages("other", ["1"])
    page = claim(store)
    other = store.claim("other", "run-a", LEASE)
    assert other is not None

    assert store.complete(page, "run-a", [{"id": "same", "job": 1}], "id")
    assert store.complete(other, "run-a", [{"id": "same", "job": 2}], "id")

    assert records(store, JOB) == [{"id": "same", "job": 1}]
    assert records(store, "other") == [{"id": "same", "job": 2}]


# --- failing, requeueing, leases -----------------------------------------------------


def test_fail_attempt_with_retry_at_hides_the_page_until_then(
    store: Store, clock: FakeClock
) -> None:
    store.seed_pages(JOB, ["1", "2"])
    page = claim(store)
    assert page.key == "1"

    assert store.fail_attempt(page, "run-a", "TimeoutException: slow", clock.now + 30) is True

    row = status(store, "1")
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "TimeoutException: slow",
    )
    assert store.next_retry_at(JOB) == 0.0  # page 2 is ready now
    assert claim(store).key == "2"
    assert store.claim(JOB, "run-a", LEASE) is None
    assert store.next_retry_at(JOB) == clock.now + 30

    clock.now += 29.9
    assert store.claim(JOB, "run-a", LEASE) is None

    clock.now += 0.1
    retried = claim(store)
    assert (retried.key, retried.attempts) == ("1", 1)


def test_fail_attempt_none_marks_failed_and_requeue_brings_it_back(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2"])
    page = claim(store)
    done = claim(store)
    assert store.complete(done, "run-a", [{"id": "d"}], "id")

    assert store.fail_attempt(page, "run-a", "handler bug", None) is True

    assert status(store, "1")["status"] == "failed"
    assert store.failed_pages(JOB) == [(JOB, "1", "handler bug")]
    assert store.claim(JOB, "run-a", LEASE) is None

    assert store.requeue(JOB, failed=True) == 1

    row = status(store, "1")
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert status(store, "2")["status"] == "done"  # done pages stay done
    assert claim(store).key == "1"


def test_fail_attempt_with_the_wrong_owner_changes_nothing(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store, "run-a")

    assert store.fail_attempt(page, "run-b", "nope", None) is False

    row = status(store, "1")
    assert (row["status"], row["lease_owner"], row["attempts"]) == ("leased", "run-a", 0)


def test_requeue_named_pages_and_leave_leased_ones(store: Store) -> None:
    store.seed_pages(JOB, ["1", "2", "3"])
    for _ in range(2):
        page = claim(store)
        assert store.complete(page, "run-a", [{"id": page.key}], "id")
    leased = claim(store)

    assert store.requeue(JOB, keys=["2", "3"]) == 1
    assert store.requeue(JOB) == 0  # neither failed nor keys: nothing moves

    assert status(store, "1")["status"] == "done"
    assert (status(store, "2")["status"], status(store, "2")["attempts"]) == ("pending", 0)
    assert status(store, leased.key)["status"] == "leased"


def test_mark_run_dead_releases_its_leases_without_charging(store: Store) -> None:
    store.begin_run("run-a", JOB, "host", 101, 1.0)
    store.begin_run("run-b", JOB, "host", 102, 1.0)
    store.seed_pages(JOB, ["1", "2", "3"])
    first = claim(store, "run-a")
    assert store.fail_attempt(first, "run-a", "flaky", retry_at=0.0)
    first = claim(store, "run-a")  # page 1 again, one attempt charged
    claim(store, "run-a")
    claim(store, "run-b")

    assert store.mark_run_dead("run-a", killed=3) == 2
    assert store.mark_run_dead("run-a") is None  # a second reaper finds it done
    # The death is logged in the same transaction, once: a reaper killed between
    # marking and logging would leave a dead run nobody reported.
    (dead,) = store.events(kind="run_dead")
    assert (dead["run_id"], dead["job"], json.loads(dead["data"])) == (
        "run-a",
        JOB,
        {"killed": 3, "released": 2},
    )
    assert "pid 101" in dead["message"]

    assert [(r.run_id, r.status) for r in store.running_runs()] == [("run-b", "running")]
    for key, attempts in (("1", 1), ("2", 0)):
        row = status(store, key)
        assert (row["status"], row["lease_owner"], row["attempts"]) == ("pending", None, attempts)
    assert status(store, "3")["lease_owner"] == "run-b"


def test_end_run_puts_the_pages_it_still_leases_back(store: Store) -> None:
    store.begin_run("run-a", JOB, "host", 101, 1.0)
    store.seed_pages(JOB, ["1", "2", "3"])
    claim(store, "run-a")
    claim(store, "run-b")

    store.end_run("run-a", "finished", 0)

    assert status(store, "1")["status"] == "pending"
    assert status(store, "2")["lease_owner"] == "run-b"
    assert [r.status for r in store.runs()] == ["finished"]


def test_reclaim_expired_leases(store: Store, clock: FakeClock) -> None:
    store.seed_pages(JOB, ["1", "2"])
    store.seed_pages("other", ["1"])
    page = claim(store, "run-a")
    assert store.claim("other", "run-a", LEASE) is not None

    clock.now += LEASE - 1
    assert store.reclaim_expired_leases(JOB) == 0
    assert status(store, "1")["status"] == "leased"

    clock.now += 2
    assert store.reclaim_expired_leases(JOB) == 1

    row = status(store, "1")
    assert (row["status"], row["lease_owner"], row["attempts"]) == ("pending", None, 0)
    assert status(store, "1", job="other")["status"] == "leased"  # other job untouched
    # The old owner lost the page: its late completion is refused.
    assert store.complete(page, "run-a", [{"id": "late"}], "id") is False
    assert store.record_count() == 0


def test_heartbeat_extends_leases(store: Store, clock: FakeClock) -> None:
    store.begin_run("run-a", JOB, "host", 101, 1.0)
    store.seed_pages(JOB, ["1", "2"])
    claim(store, "run-a")
    claim(store, "run-b")

    clock.now += 50
    store.heartbeat("run-a", LEASE)
    clock.now += 20  # past the first lease, inside the renewed one

    assert store.reclaim_expired_leases(JOB) == 1  # only run-b's page
    row = status(store, "1")
    assert (row["status"], row["lease_owner"]) == ("leased", "run-a")
    assert row["lease_expires"] == 1000.0 + 50 + LEASE
    assert status(store, "2")["status"] == "pending"
    assert store.running_runs()[0].heartbeat_at == 1050.0


# --- reading ------------------------------------------------------------------------


def test_iter_record_texts_is_in_page_then_position_order(store: Store) -> None:
    store.seed_pages(JOB, ["p1", "p2", "p3"])
    pages = {page.key: page for page in (claim(store) for _ in range(3))}
    # Completed out of order, with record keys that do not sort like positions.
    assert store.complete(pages["p3"], "run-a", [{"id": "c"}, {"id": "a"}], "id")
    assert store.complete(pages["p1"], "run-a", [{"id": "z"}, {"id": "y"}, {"id": "x"}], "id")
    assert store.complete(pages["p2"], "run-a", [{"id": "m"}], "id")

    assert [r["id"] for r in records(store)] == ["z", "y", "x", "m", "c", "a"]
    assert [r["id"] for r in records(store, None)] == ["z", "y", "x", "m", "c", "a"]


def test_dumps_record_is_canonical() -> None:
    one = {"b": 1, "a": "José Müller", "c": {"z": [1, 2], "y": None}}
    two = {"c": {"y": None, "z": [1, 2]}, "a": "José Müller", "b": 1}

    text = dumps_record(one)

    assert text == dumps_record(two)
    assert text == '{"a": "José Müller", "b": 1, "c": {"y": null, "z": [1, 2]}}'
    assert json.loads(text) == one


def test_stored_text_is_canonical(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)
    assert store.complete(page, "run-a", [{"name": "Łukasz", "id": "1"}], "id")

    assert list(store.iter_record_texts(JOB)) == ['{"id": "1", "name": "Łukasz"}']


# --- the two budgets, learned state, upgrades -----------------------------------------


def test_infra_failures_charge_recoveries_not_attempts(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)
    assert store.fail_attempt(page, "run-a", "browser gone", 0.0, charge="infra")
    again = claim(store)
    assert (again.attempts, again.recoveries) == (0, 1)
    assert store.fail_attempt(again, "run-a", "KeyError", 0.0, charge="page")
    third = claim(store)
    assert (third.attempts, third.recoveries) == (1, 1)
    assert store.fail_attempt(third, "run-a", "gave up", None)
    assert store.requeue(JOB, failed=True) == 1
    row = status(store, "1")
    assert (row["attempts"], row["recoveries"]) == (0, 0)


def test_job_state_is_kept_per_job_and_replaced(store_target: str) -> None:
    with Store.open(store_target) as store:
        assert store.get_state(JOB, "rate") is None
        store.set_state(JOB, "rate", "1.5")
        store.set_state(JOB, "rate", "0.75")
        store.set_state("other", "rate", "9")
    with Store.open(store_target, create=False) as store:
        assert store.get_state(JOB, "rate") == "0.75"
        assert store.get_state("other", "rate") == "9"


def test_done_at_and_records_per_page(store: Store, clock: FakeClock) -> None:
    store.seed_pages(JOB, ["1", "2", "3"])
    first = claim(store)
    store.complete(first, "run-a", [{"id": "a"}, {"id": "b"}], "id")
    clock.now += 5
    second = claim(store)
    store.complete(second, "run-a", [], "id")
    claim(store)  # page 3 leased, not done
    assert store.done_at(JOB) == {"1": 1000.0, "2": 1005.0}
    assert store.records_per_page(JOB) == {"1": 2}  # a page without records is left out
    assert store.done_at("other-job") == {} and store.records_per_page("other-job") == {}


def test_enqueued_pages_commit_with_the_page_and_are_never_added_twice(
    store: Store,
) -> None:
    store.seed_pages(JOB, ["1", "2"])
    first = claim(store)
    assert store.complete_rows(first, "run-a", [], new_pages=["d1", "d2", "d1", "2"])
    keys = [(r["key"], r["seq"], r["status"]) for r in pages(store)]
    assert keys == [
        ("1", 0, "done"),
        ("2", 1, "pending"),
        ("d1", 2, "pending"),
        ("d2", 3, "pending"),
    ]
    # the same keys found again (another page, or this one processed again) change nothing
    second = claim(store)
    assert store.complete_rows(second, "run-a", [], new_pages=["d2", "1"])
    assert [r["key"] for r in pages(store)] == ["1", "2", "d1", "d2"]
    assert status(store, "1")["status"] == "done"


def test_enqueued_pages_are_not_added_when_the_lease_was_lost(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)
    assert not store.complete_rows(page, "run-b", [], new_pages=["d1"])
    assert [r["key"] for r in pages(store)] == ["1"]


def test_enqueued_pages_roll_back_with_a_failed_commit(store: Store) -> None:
    store.seed_pages(JOB, ["1"])
    page = claim(store)
    bad = [{"job": JOB, "record_key": None, "page_key": "1", "page_seq": 0, "position": 0}]
    with pytest.raises(DBAPIError):
        store.complete_rows(page, "run-a", bad, new_pages=["d1"])
    assert [r["key"] for r in pages(store)] == ["1"]
    assert status(store, "1")["status"] == "leased"


def test_states_and_http_stats_round_trip(store: Store) -> None:
    store.set_state(JOB, "rate", "2.0")
    store.set_state(JOB, "rate:/api/v2/matches", "5.0")
    store.set_state(JOB, "rate:/api/v2/matches/{id}/badge", "unlimited")
    store.set_state("other", "rate:/x", "1")
    assert store.states(JOB, "rate:") == {
        "rate:/api/v2/matches": "5.0",
        "rate:/api/v2/matches/{id}/badge": "unlimited",
    }
    store.save_http_stats("run-a", JOB, {"/a": {"requests": 3}, "/b": {"requests": 1}})
    store.save_http_stats("run-a", JOB, {"/a": {"requests": 5}})  # replaces run-a's /a
    store.save_http_stats("run-b", JOB, {"/a": {"requests": 2}})
    store.save_http_stats("run-c", "other", {"/a": {"requests": 9}})
    assert store.http_stats(JOB) == [
        {"/a": {"requests": 5}, "/b": {"requests": 1}},
        {"/a": {"requests": 2}},
    ]


# --- many processes, one store ----------------------------------------------------


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


def test_turns_are_spaced_by_the_shared_interval_and_wait_out_holds(
    store: Store, clock: FakeClock
) -> None:
    assert store.take_turn(JOB, "pages") == (0.0, 0.0)  # unlimited until told
    store.set_pace(JOB, "pages", interval=0.5)
    assert [store.take_turn(JOB, "pages")[0] for _ in range(3)] == [0.0, 0.5, 1.0]
    clock.now += 5.0
    assert store.take_turn(JOB, "pages") == (0.0, 0.5)  # no credit for idle time

    assert store.hold_left(JOB, "pages") == 0.0
    store.set_pace(JOB, "pages", hold_for=10.0)
    assert store.hold_left(JOB, "pages") == 10.0
    assert store.take_turn(JOB, "pages")[0] == 10.0
    store.set_pace(JOB, "pages", hold_for=2.0)  # a shorter hold does not shorten it
    assert store.take_turn(JOB, "pages")[0] == 10.5

    store.set_pace(JOB, "pages", interval=0.25, only_slower=True)
    assert store.take_turn(JOB, "pages")[1] == 0.5
    store.set_pace(JOB, "pages", interval=0.25)
    assert store.take_turn(JOB, "pages")[1] == 0.25
    assert store.take_turn("other", "pages") == (0.0, 0.0)  # per job
    assert store.take_turn(JOB, "http:list") == (0.0, 0.0)  # and per key
    assert store.take_turn(JOB, "http:list", min_interval=2.0) == (0.0, 2.0)  # a ceiling
    assert store.take_turn(JOB, "http:list", min_interval=2.0) == (2.0, 2.0)


def test_a_peek_at_the_pace_reports_the_wait_and_reserves_nothing(
    store: Store, clock: FakeClock
) -> None:
    assert store.peek_pace(JOB, "pages") is None  # nothing kept yet
    assert store.take_turn(JOB, "pages") == (0.0, 0.0)
    assert store.peek_pace(JOB, "pages") == (0.0, 0.0)  # unlimited, free
    store.set_pace(JOB, "pages", interval=0.5)
    assert store.take_turn(JOB, "pages") == (0.0, 0.5)
    assert store.peek_pace(JOB, "pages") == (0.5, 0.5)  # the next turn's wait ...
    assert store.peek_pace(JOB, "pages") == (0.5, 0.5)  # ... reserved by no peek
    assert store.take_turn(JOB, "pages") == (0.5, 0.5)
    store.set_pace(JOB, "pages", interval=0.0, hold_for=3.0)
    assert store.peek_pace(JOB, "pages") == (3.0, 0.0)  # a hold, though unlimited
    clock.now += 3.0
    assert store.peek_pace(JOB, "pages") == (0.0, 0.0)
    assert store.peek_pace(JOB, "http:list") is None  # per key


def test_a_peek_waits_for_a_hold_being_stored_and_sees_it(store: Store, clock: FakeClock) -> None:
    """A turn's upsert waits for another runner's change in progress; so must the
    read that stands for it, or a request goes out inside a hold being stored."""
    store.take_turn(JOB, "pages")
    engine = store._engine  # type: ignore[attr-defined]
    seen: list[tuple[float, float] | None] = []
    peeked = threading.Event()

    def peek() -> None:
        seen.append(store.peek_pace(JOB, "pages"))
        peeked.set()

    with engine.begin() as conn:  # the other runner, storing a hold
        conn.execute(
            s.pacing.update()
            .where(s.pacing.c.job == JOB, s.pacing.c.key == "pages")
            .values(hold_until=clock.now + 30.0)
        )
        reader = threading.Thread(target=peek)
        reader.start()
        assert not peeked.wait(0.5)  # held back by the change in progress ...
    reader.join(timeout=30)
    assert seen == [(30.0, 0.0)]  # ... and then it sees the hold


def test_turns_taken_at_once_never_share_a_slot(store: Store, clock: FakeClock) -> None:
    store.set_pace(JOB, "pages", interval=1.0)
    waits: list[float] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        for _ in range(n):
            wait, _ = store.take_turn(JOB, "pages")
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == [float(i) for i in range(100)]


def test_four_processes_claiming_for_ten_seconds_never_lease_a_page_twice(
    store: Store, store_target: str, tmp_path: Path
) -> None:
    """Four processes claim and complete while pages keep arriving for 10 s; every
    page is claimed by one of them once and ends done once, with its records."""
    mp = _spawn()
    go = mp.Event()
    stop_at = time.time() + 10.0 + 5.0  # ~5 s to spawn the four, then 10 s of claiming
    logs = [tmp_path / f"claims-{n}.txt" for n in range(4)]
    workers = [
        mp.Process(
            target=_workers.claim_until,
            # they go on a second past the last seeding, which may commit late
            args=(store_target, f"run-{n}", go, stop_at + 1.0, str(log)),
        )
        for n, log in enumerate(logs)
    ]
    for worker in workers:
        worker.start()
    while not all(log.exists() for log in logs) and time.time() < stop_at - 10.0:
        time.sleep(0.05)  # each worker creates its log once its store is open
    go.set()
    seeded: list[str] = []
    began = time.time()
    while time.time() < stop_at:  # keep a few hundred pages waiting, no more
        if store.page_counts(JOB)["pending"] < 300:
            batch = [str(n) for n in range(len(seeded), len(seeded) + 300)]
            store.seed_pages(JOB, batch)
            seeded += batch
        time.sleep(0.02)
    claiming = time.time() - began
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, f"a claimer failed (exit {worker.exitcode})"

    claims = {log.stem: log.read_text().split() for log in logs}
    every = [key for keys in claims.values() for key in keys]
    assert claiming >= 9.0, claiming
    assert all(len(keys) > 50 for keys in claims.values()), {k: len(v) for k, v in claims.items()}
    assert len(every) == len(set(every)), "a page was leased twice"
    assert sorted(every, key=int) == seeded  # every page claimed, once
    rows = pages(store)
    assert {r["status"] for r in rows} == {"done"} and len(rows) == len(seeded)
    assert {r["attempts"] for r in rows} == {1}  # each done exactly once
    owner_of = {
        key: name.replace("claims-", "run-") for name, keys in claims.items() for key in keys
    }
    stored = records(store)
    assert len(stored) == len(seeded)
    assert all(r["by"] == owner_of[str(r["id"])] for r in stored)


def test_processes_seeding_the_same_pages_at_once_add_each_once(
    store: Store, store_target: str, tmp_path: Path
) -> None:
    mp = _spawn()
    go = mp.Event()
    shared = [str(n) for n in range(1000)]
    jobs = []
    for n in range(4):
        keys = shared[:]
        random.Random(n).shuffle(keys)
        keys += [f"own-{n}-{i}" for i in range(100)]
        result = tmp_path / f"added-{n}.txt"
        jobs.append(
            (mp.Process(target=_workers.seed, args=(store_target, keys, go, str(result))), result)
        )
    for process, _ in jobs:
        process.start()
    go.set()
    for process, _ in jobs:
        process.join(timeout=120)
        assert process.exitcode == 0
    added = sum(int(result.read_text()) for _, result in jobs)
    assert store.page_counts(JOB)["total"] == 1400
    assert added == 1400  # each page counted by the one seeder that added it
    assert len({r["key"] for r in pages(store)}) == 1400
