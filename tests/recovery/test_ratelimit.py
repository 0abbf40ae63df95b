"""Tests for the adaptive rate limiter, on fake clocks: nothing here really waits."""

from __future__ import annotations

import threading
import time

import pytest

from enduro.recovery import RateLimiter


class Clock:
    """A fake clock for one thread: waiting moves time forward."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


class SharedClock:
    """A fake clock for many threads: waiters block until the test moves time past them.

    A waiter whose time has come is released inside :meth:`tick`, so ``waiting``
    counts only threads that are really parked: the test moves time when every
    live worker is.
    """

    def __init__(self) -> None:
        self._ticks = 0  # in steps of 1/8 s, so times stay exact
        self._cond = threading.Condition()
        self._parked: dict[object, float] = {}

    def __call__(self) -> float:
        with self._cond:
            return self._ticks / 8

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._parked)

    def wait(self, seconds: float) -> bool:
        me = object()
        with self._cond:
            self._parked[me] = self._ticks / 8 + seconds
            while me in self._parked:
                if not self._cond.wait(timeout=10):
                    raise AssertionError("the test stopped moving time")
        return False

    def tick(self) -> None:
        with self._cond:
            self._ticks += 1
            now = self._ticks / 8
            for waiter in [w for w, until in self._parked.items() if until <= now]:
                del self._parked[waiter]
            self._cond.notify_all()


def _acquire_times(limiter: RateLimiter, clock: Clock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        assert limiter.acquire(wait=clock.wait)
        times.append(clock())
    return times


def test_unlimited_never_waits() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)

    assert _acquire_times(limiter, clock, 100) == [0.0] * 100
    assert clock.waits == []
    assert limiter.rate is None


def test_rate_spaces_requests() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, clock=clock)

    assert _acquire_times(limiter, clock, 4) == [0.0, 0.5, 1.0, 1.5]


def test_idle_time_is_not_saved_up_as_a_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, clock=clock)
    _acquire_times(limiter, clock, 1)
    clock.now = 100.0

    assert _acquire_times(limiter, clock, 3) == [100.0, 100.5, 101.0]


def test_hold_blocks_until_it_ends_and_only_extends() -> None:
    clock = Clock(10.0)
    limiter = RateLimiter(clock=clock)

    limiter.hold(5.0)
    limiter.hold(1.0)  # shorter: changes nothing

    assert limiter.cooldown_left() == 5.0
    assert _acquire_times(limiter, clock, 2) == [15.0, 15.0]
    assert limiter.cooldown_left() == 0.0


@pytest.mark.parametrize("rate", [None, 100.0])
def test_no_request_before_retry_after(rate: float | None) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, min_rate=50.0, clock=clock)
    _acquire_times(limiter, clock, 3)
    clock.now = 7.0

    limiter.throttled(retry_after=2.0)

    assert _acquire_times(limiter, clock, 1)[0] >= 9.0


def test_acquire_gives_up_when_stopped() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    stop = threading.Event()
    limiter.hold(60.0)

    def wait(seconds: float) -> bool:
        stop.set()
        return True

    assert limiter.acquire(stop, wait=wait) is False
    stop_now = threading.Event()
    stop_now.set()
    assert RateLimiter(clock=clock).acquire(stop_now) is False


def test_acquire_waits_on_stop_by_default() -> None:
    """Without a wait function the wait is stop.wait: setting stop ends it at once."""
    limiter = RateLimiter()
    limiter.hold(60.0)
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()

    assert limiter.acquire(stop) is False
    assert time.monotonic() - started < 10


def test_throttled_cuts_the_rate_down_to_the_floor() -> None:
    clock = Clock()
    limiter = RateLimiter(4.0, min_rate=0.75, cut=0.5, clock=clock)
    rates = []
    for _ in range(4):
        limiter.throttled()
        rates.append(limiter.rate)
        _acquire_times(limiter, clock, 1)

    assert rates == [2.0, 1.0, 0.75, 0.75]


def test_complaints_about_requests_sent_before_the_cut_do_not_cut_again() -> None:
    """Four workers' pages in flight all come back 429: that is one complaint, not four."""
    clock = Clock()
    limiter = RateLimiter(4.0, cut=0.5, clock=clock)
    _acquire_times(limiter, clock, 4)

    for _ in range(4):
        limiter.throttled(retry_after=1.0)

    assert limiter.rate == 2.0
    _acquire_times(limiter, clock, 1)  # sent at the cut rate
    limiter.throttled()
    assert limiter.rate == 1.0


def test_success_raises_the_rate_slowly() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, raise_after=3, raise_by=1.5, clock=clock)

    limiter.succeeded()
    limiter.succeeded()
    assert limiter.rate == 1.0
    limiter.succeeded()
    assert limiter.rate == 1.5
    for _ in range(3):
        limiter.succeeded()
    assert limiter.rate == 2.25


def test_a_complaint_resets_the_success_streak() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, raise_after=3, raise_by=2.0, clock=clock)

    limiter.succeeded()
    limiter.succeeded()
    limiter.throttled()
    assert limiter.rate == 1.0
    limiter.succeeded()
    limiter.succeeded()
    assert limiter.rate == 1.0
    limiter.succeeded()
    assert limiter.rate == 2.0


def test_unlimited_stays_unlimited_on_success() -> None:
    limiter = RateLimiter(raise_after=1)

    limiter.succeeded()

    assert limiter.rate is None


def test_first_complaint_cuts_from_the_observed_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(cut=0.5, window=30.0, clock=clock)
    for i in range(10):  # 2 pages/s for 5 s
        clock.now = i * 0.5
        assert limiter.acquire(wait=clock.wait)
    clock.now = 5.0

    limiter.throttled()

    assert limiter.rate == pytest.approx(1.0)
    # From now on requests are spaced at the learned rate.
    assert _acquire_times(limiter, clock, 3) == pytest.approx([5.0, 6.0, 7.0])


def test_observed_rate_uses_only_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(cut=0.5, window=10.0, clock=clock)
    for i in range(100):  # 10 pages/s for 10 s ...
        clock.now = i * 0.1
        limiter.acquire(wait=clock.wait)
    for i in range(10):  # ... then 1 page/s for 10 s
        clock.now = 10.0 + i
        limiter.acquire(wait=clock.wait)
    clock.now = 20.0

    limiter.throttled()

    assert limiter.rate == pytest.approx(0.55, abs=0.06)


def test_a_cut_never_goes_below_min_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(min_rate=0.25, clock=clock)
    limiter.acquire(wait=clock.wait)
    clock.now = 1000.0

    limiter.throttled()

    assert limiter.rate == 0.25


def test_a_slow_starting_rate_lowers_the_floor() -> None:
    limiter = RateLimiter(0.05, min_rate=0.1)

    limiter.throttled()

    assert limiter.rate == pytest.approx(0.05)


def test_refuses_a_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0.0)
    with pytest.raises(ValueError):
        RateLimiter(cut=1.5)


# --- many threads ---------------------------------------------------------------------


def _run_workers(limiter: RateLimiter, clock: SharedClock, workers: int, each: int) -> list[float]:
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            assert limiter.acquire(wait=clock.wait)
            with lock:
                taken.append(clock())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while any(t.is_alive() for t in threads):
        assert time.monotonic() < deadline, "workers did not finish"
        # Move time only once every live worker is parked in wait.
        alive = sum(t.is_alive() for t in threads)
        if clock.waiting >= alive:
            clock.tick()
        else:
            time.sleep(0.0005)
    for thread in threads:
        thread.join()
    return sorted(taken)


def test_threads_already_waiting_respect_a_new_hold() -> None:
    clock = SharedClock()
    limiter = RateLimiter(1.0, min_rate=0.5, clock=clock)
    assert limiter.acquire(wait=clock.wait)  # t=0; the next token is free at t=1
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        assert limiter.acquire(wait=clock.wait)
        with lock:
            taken.append(clock())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while clock.waiting < 3:  # all three parked, waiting for t=1
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for _ in range(4):
        clock.tick()  # t=0.5
    limiter.throttled(retry_after=2.0)  # rate 0.5/s, nothing before t=2.5

    while any(t.is_alive() for t in threads):
        assert time.monotonic() < deadline, "workers did not finish"
        if clock.waiting >= sum(t.is_alive() for t in threads):
            clock.tick()
        else:
            time.sleep(0.0005)

    assert sorted(taken) == [2.5, 4.5, 6.5]


def test_many_threads_never_pass_a_hold_and_keep_the_rate() -> None:
    clock = SharedClock()
    limiter = RateLimiter(4.0, min_rate=2.0, clock=clock)
    limiter.throttled(retry_after=2.0)  # at t=0: rate 2/s, nothing before t=2

    taken = _run_workers(limiter, clock, workers=4, each=5)

    # Nothing before the hold ends, then one request every 1/rate seconds, none lost.
    assert taken == [2.0 + 0.5 * i for i in range(20)]
    assert limiter.cooldown_left() == 0.0


def test_a_limit_that_binds_is_kept_when_raised() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, raise_after=4, raise_by=1.5, clock=clock)
    for _ in range(4):
        assert limiter.acquire(wait=clock.wait)  # spaced by the limiter: 2 per second
        limiter.succeeded()
    assert limiter.rate == 3.0


def test_a_limit_that_no_longer_binds_is_lifted() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, raise_after=4, raise_by=1.5, clock=clock)
    for _ in range(4):
        assert limiter.acquire(wait=clock.wait)
        clock.now += 5.0  # pages take 5 s each: far slower than the limit allows
        limiter.succeeded()
    assert limiter.rate is None


class _PaceHeldMidway:
    """A shared pace, free and unlimited, asked while another thread of the same
    runner meets a 429 and holds (the store's answer predates the hold)."""

    def __init__(self) -> None:
        self.limiter: RateLimiter | None = None
        self.counted: list[int] = []
        self.sets: list[float | None] = []

    def take(self, min_interval: float) -> tuple[float, float]:
        if self.limiter is not None and not self.counted:
            self.counted.append(self.limiter.hold(5.0))  # the other thread's hold
        return 0.0, 0.0

    def hold_left(self) -> float:
        return 0.0

    def set(
        self,
        *,
        interval: float | None = None,
        only_slower: bool = False,
        hold_for: float | None = None,
    ) -> None:
        self.sets.append(hold_for)


def test_a_hold_begun_while_the_shared_pace_was_asked_holds_that_request_too() -> None:
    clock = Clock(100.0)
    pace = _PaceHeldMidway()
    limiter = RateLimiter(clock=clock, shared=pace)
    pace.limiter = limiter

    assert limiter.acquire(wait=clock.wait, track=True)

    # the hold counted no request in flight, so this one must not have gone inside it
    assert pace.counted == [0]
    assert clock.waits == [5.0] and clock.now == 105.0
