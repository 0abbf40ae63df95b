"""Tests for the run guards: circuit breaker, burst detector, stall watch (fake clocks)."""

from __future__ import annotations

from enduro.recovery import BurstDetector, CircuitBreaker, StallWatch


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
