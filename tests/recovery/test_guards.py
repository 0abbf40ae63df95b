"""Tests for the run guards: circuit breaker, burst detector, stall watch (fake clocks)."""

from __future__ import annotations

import pytest

from enduro.errors import message_shape
from enduro.recovery import BrokenJobWatch, BurstDetector, CircuitBreaker, StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_the_limit_within_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(limit=3, window=600.0, clock=clock)

    results = []
    for t in (0.0, 100.0, 200.0):
        clock.now = t
        results.append(breaker.failure())

    assert results == [False, False, True]
    assert breaker.open


def test_breaker_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(limit=2, window=600.0, clock=clock)
    breaker.failure()
    assert breaker.failure()

    breaker.success()

    assert not breaker.open
    assert not breaker.failure()  # counting starts over


def test_breaker_forgets_failures_older_than_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(limit=3, window=600.0, clock=clock)
    results = []
    for t in (0.0, 400.0, 700.0):
        clock.now = t
        results.append(breaker.failure())

    assert results == [False, False, False]
    clock.now = 750.0
    assert breaker.failure()
    clock.now = 1500.0
    assert not breaker.open  # the failures aged out


def test_burst_reports_once_per_burst() -> None:
    clock = Clock()
    bursts = BurstDetector(threshold=3, window=60.0, clock=clock)

    results = []
    for t in (0.0, 10.0, 20.0, 21.0, 22.0, 23.0):
        clock.now = t
        results.append(bursts.record("network"))

    assert results == [False, False, True, False, False, True]


def test_burst_counts_each_category_apart() -> None:
    clock = Clock()
    bursts = BurstDetector(threshold=2, window=60.0, clock=clock)

    assert not bursts.record("network")
    assert not bursts.record("element")
    assert bursts.record("network")
    assert bursts.record("element")


def test_errors_spread_out_are_not_a_burst() -> None:
    clock = Clock()
    bursts = BurstDetector(threshold=3, window=60.0, clock=clock)

    results = []
    for t in (0.0, 50.0, 100.0, 150.0, 200.0):
        clock.now = t
        results.append(bursts.record("server_error"))

    assert results == [False] * 5


def test_stall_restarts_then_halts() -> None:
    clock = Clock()
    stall = StallWatch(10.0, clock=clock)

    verdicts = []
    for t in (5.0, 9.9, 10.0, 12.0, 19.9, 20.0):
        clock.now = t
        verdicts.append(stall.check())

    assert verdicts == ["", "", "restart", "", "", "halt"]


def test_progress_after_a_restart_clears_the_stall() -> None:
    clock = Clock()
    stall = StallWatch(10.0, clock=clock)
    clock.now = 10.0
    assert stall.check() == "restart"

    clock.now = 15.0
    stall.progressed()

    clock.now = 24.0
    assert stall.check() == ""
    clock.now = 25.0
    assert stall.check() == "restart"  # a new stall starts with a restart again


def test_progress_keeps_a_busy_run_quiet() -> None:
    clock = Clock()
    stall = StallWatch(10.0, clock=clock)

    for t in range(1, 100):
        clock.now = float(t * 5)
        stall.progressed()
        assert stall.check() == ""


def test_stall_watch_off() -> None:
    clock = Clock()
    stall = StallWatch(0.0, clock=clock)

    clock.now = 1e9
    assert stall.check() == ""
    assert stall.check() == ""


# --- the broken-job watch --------------------------------------------------------


def test_broken_job_trips_at_the_count_with_the_most_frequent_message() -> None:
    watch = BrokenJobWatch(after=4)
    assert watch.failed("1", "ValueError: no rows on page 1\nat line 3", final=False) is None
    assert watch.failed("2", "KeyError: 'id'", final=False) is None
    assert watch.failed("3", "ValueError: no rows on page 3", final=False) is None
    broken = watch.failed("1", "ValueError: no rows on page 1", final=True)
    assert broken is not None
    # messages that differ only in their numbers are one kind; the first one shows it
    assert (broken.message, broken.pages, broken.example) == (
        "ValueError: no rows on page 1",
        2,
        "1",
    )
    assert (broken.failures, broken.given_up) == (4, ("1",))
    assert broken.reason() == (
        "the job looks broken: ValueError: no rows on page 1 (2 pages, e.g. page 1)"
    )
    assert watch.failed("4", "ValueError: no rows", final=False) is None  # trips once


def test_a_page_done_starts_the_count_again() -> None:
    watch = BrokenJobWatch(after=3)
    watch.failed("1", "boom", final=False)
    watch.failed("2", "boom", final=False)
    watch.done()
    assert watch.failed("3", "boom", final=False) is None
    assert watch.failed("4", "boom", final=False) is None
    assert watch.failed("5", "boom", final=False) is not None


def test_retries_of_pages_that_failed_before_the_last_page_done_do_not_count() -> None:
    """The end of a healthy run: only the retries of its few bad pages are left, in a
    row with no page done between them. That is not a broken job."""
    watch = BrokenJobWatch(after=3)
    for bad in ("20", "40", "60", "80"):
        watch.failed(bad, "ValueError: bad row", final=False)
        watch.done()  # the good pages between them
    for bad in ("20", "40", "60", "80"):
        assert watch.failed(bad, "ValueError: bad row", final=True) is None


def test_broken_job_watch_off() -> None:
    watch = BrokenJobWatch(after=0)
    assert all(watch.failed(str(n), "boom", final=False) is None for n in range(100))
    with pytest.raises(ValueError):
        BrokenJobWatch(after=-1)


def test_messages_that_differ_only_in_numbers_and_ids_are_one_kind() -> None:
    same = [
        "AuthLost: GET /api/v2/matches/M5C89D7F8F334/badge: HTTP 303 to the login page",
        "AuthLost: GET /api/v2/matches/MCD7F24B19970/badge: HTTP 303 to the login page\n  at x",
    ]
    assert message_shape(same[0]) == message_shape(same[1])
    shape = "AuthLost: GET /api/#/matches/#/badge: HTTP # to the login page"
    assert message_shape(same[0]) == shape
    assert message_shape("KeyError: 'name'") != message_shape("KeyError: 'rows'")
    watch = BrokenJobWatch(after=2)
    assert watch.failed("1", same[0], final=False) is None
    broken = watch.failed("2", same[1], final=False)
    assert broken is not None and (broken.message, broken.pages) == (same[0], 2)
