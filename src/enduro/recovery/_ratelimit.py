"""The adaptive rate limiter: one per run, shared by every worker.

A token bucket (burst 1: requests are spaced ``1/rate`` apart) and a cool-down
(no request at all until a moment has passed). The rate is learned: a 429 or
503 cuts it, a long run of successes raises it slowly, the way TCP finds the
bandwidth of a link. Clock and wait are injected, so tests never really wait.

With a :class:`SharedPace` (many runners of one job, one store), the spacing,
the rate and every cool-down live in the store instead: each request reserves
its turn there, so N runners together keep to the one rate and none sends
inside a window another was told about.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["EndpointLimiters", "RateLimiter", "SharedPace"]

# A short history makes a noisy estimate of the rate we were going at.
_MIN_SPAN = 1.0
# Holds whose ends lie this close are one (the clocks of two runners differ a little).
_SAME_HOLD = 0.5


class SharedPace(Protocol):
    """The pace every runner of a job keeps to, kept where they all see it."""

    def take(self, min_interval: float) -> tuple[float, float]:
        """Reserve the next turn, at least ``min_interval`` after the one before:
        (seconds until it, seconds between turns; 0: unlimited)."""
        ...

    def hold_left(self) -> float:
        """Seconds until the hold in force ends (0: none)."""
        ...

    def set(
        self,
        *,
        interval: float | None = None,
        only_slower: bool = False,
        hold_for: float | None = None,
    ) -> None:
        """Change the shared interval (``only_slower``: never shorten it) and hold
        every runner for ``hold_for`` seconds (only ever extended)."""
        ...


class RateLimiter:
    """Spaces out requests to the site; learns the rate the site tolerates.

    Args:
        rate: requests per second to start at (None: unlimited until the site complains).
        min_rate: the rate is never cut below this (nor below ``rate`` if that is lower).
        cut: the factor a complaint multiplies the rate by.
        raise_after: successes in a row after which the rate is raised.
        raise_by: the factor a raise multiplies the rate by. A raise that finds
            the pages going at under half the allowed rate lifts the limit
            altogether: it no longer binds, so the site takes our own pace.
        window: seconds of history used to measure the rate actually reached.
        clock: monotonic seconds.
        max_rate: the rate is never raised above this (None: no ceiling); an
            unlimited start becomes this.
        shared: keep the spacing, the rate and the cool-downs in a pace shared
            with other runners (None: in this process only).
        on_shared_hold: told ``(seconds left, requests in flight, turns)`` the
            first time this limiter meets a hold another runner began, ``turns``
            being how long ago (seconds) each turn of the last second was taken:
            the requests of those before the hold began were on their way, and
            may reach the site inside its window.
    """

    def __init__(
        self,
        rate: float | None = None,
        *,
        min_rate: float = 0.1,
        cut: float = 0.5,
        raise_after: int = 10,
        raise_by: float = 1.5,
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_rate: float | None = None,
        shared: SharedPace | None = None,
        on_shared_hold: Callable[[float, int, list[float]], None] | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 or None, not {rate}")
        if max_rate is not None and max_rate <= 0:
            raise ValueError(f"max_rate must be > 0 or None, not {max_rate}")
        rate = _capped(rate, max_rate)
        if min_rate <= 0 or not 0 < cut < 1 or raise_by < 1 or raise_after < 1 or window <= 0:
            raise ValueError("need min_rate > 0, 0 < cut < 1, raise_by >= 1, raise_after >= 1")
        self._lock = threading.Lock()
        self._clock = clock
        self._rate = rate
        self._min_rate = min_rate if rate is None else min(min_rate, rate)
        self._cut = cut
        self._raise_after = raise_after
        self._raise_by = raise_by
        self._window = window
        self._next_slot = float("-inf")  # the earliest moment the next token is free
        self._hold_until = float("-inf")
        self._streak = 0
        self._recent: deque[float] = deque()  # times of acquisitions within the window
        self._first: float | None = None  # time of the first acquisition ever
        self._since_cut: int | None = None  # acquisitions since the last cut (None: no cut yet)
        self._in_flight = 0  # tracked acquisitions not yet finished
        self._max_rate = max_rate
        self._shared = shared
        self._on_shared_hold = on_shared_hold
        self._noticed_until = float("-inf")  # the end of the last hold met and told

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now (None: unlimited, nothing learned yet)."""
        with self._lock:
            return self._rate

    def cooldown_left(self) -> float:
        """Seconds until the cool-down in force (if any) ends."""
        with self._lock:
            return max(0.0, self._hold_until - self._clock())

    def acquire(
        self,
        stop: threading.Event | None = None,
        *,
        wait: Callable[[float], bool] | None = None,
        track: bool = False,
    ) -> bool:
        """Block until a request may go out: past any cool-down, and a token is free.

        Args:
            stop: set it to give up waiting.
            wait: waits up to the given seconds, True when told to give up
                (default: ``stop.wait``, or ``time.sleep``).
            track: count the request as in flight until :meth:`finished`, so a
                cool-down knows how many had already passed when it began.

        Returns:
            True when the request may go; False when ``stop`` was set first.
        """
        if wait is None:
            wait = stop.wait if stop is not None else _sleep
        while True:
            if stop is not None and stop.is_set():
                return False
            with self._lock:
                now = self._clock()
                ready_at = self._hold_until
                if self._shared is None and self._rate:
                    ready_at = max(ready_at, self._next_slot)
                if now >= ready_at and self._shared is None:
                    self._take(now)
                    if track:
                        self._in_flight += 1
                    return True
                # Re-checked after the wait: a hold may have been extended meanwhile.
                left = ready_at - now
            if left <= 0:
                taken = self._take_shared(now, wait, track)
                if taken is not None:
                    return taken
                continue  # this runner began a hold meanwhile: wait it out
            if wait(left):
                return False

    def wait_hold(
        self, stop: threading.Event | None = None, *, wait: Callable[[float], bool] | None = None
    ) -> bool:
        """Block while a cool-down is in force (this runner's, or one another
        runner was told), taking no turn. Returns False when ``stop`` was set first."""
        if wait is None:
            wait = stop.wait if stop is not None else _sleep
        while True:
            if stop is not None and stop.is_set():
                return False
            left = self.cooldown_left()
            if left <= 0 and self._shared is not None:
                left = self._shared.hold_left()
            if left <= 0:
                return True
            if wait(left):
                return False

    def _take_shared(self, now: float, wait: Callable[[float], bool], track: bool) -> bool | None:
        """Reserve a turn in the shared pace, adopt its rate, wait for the turn.

        Returns None, taking nothing, when a hold of this runner's began while
        the store was asked: a request counted in flight only after its hold read
        that count would reach the site inside the window uncounted."""
        assert self._shared is not None
        left, interval = self._shared.take(1.0 / self._max_rate if self._max_rate else 0.0)
        with self._lock:
            self._rate = _capped(1.0 / interval if interval > 0 else None, self._max_rate)
            if self._hold_until > self._clock():
                return None
            self._take(now)
            if track:
                self._in_flight += 1
        if left > 0 and self._on_shared_hold is not None:
            self._notice_hold(now, track)
        # A hold another runner began while this one waited for its turn (a
        # Retry-After it was told) holds this turn too.
        while left > 0:
            if wait(left):
                if track:
                    self.finished()
                return False
            left = self._shared.hold_left()
        return True

    def _notice_hold(self, now: float, track: bool) -> None:
        """Tell ``on_shared_hold`` of a hold another runner began, once per hold."""
        assert self._shared is not None and self._on_shared_hold is not None
        held = self._shared.hold_left()
        until = now + held
        with self._lock:
            own = self._hold_until >= until - _SAME_HOLD
            new = held > 0 and not own and until > self._noticed_until + _SAME_HOLD
            if new:
                self._noticed_until = until
            in_flight = max(0, self._in_flight - (1 if track else 0))  # not this one: held
            # the turns of the last second, this one (held) left out
            turns = [round(now - t, 4) for t in list(self._recent)[:-1] if now - t <= 1.0]
        if new:
            self._on_shared_hold(held, in_flight, turns)

    def _take(self, now: float) -> None:
        if self._rate:
            self._next_slot = max(self._next_slot, now) + 1.0 / self._rate
        self._recent.append(now)
        self._trim(now)
        if self._first is None:
            self._first = now
        if self._since_cut is not None:
            self._since_cut += 1

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0] < now - self._window:
            self._recent.popleft()

    def finished(self) -> None:
        """A tracked request came back (or failed)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def hold(self, seconds: float) -> int:
        """No request goes out for ``seconds`` from now (only ever extends a cool-down).

        Returns:
            Tracked requests that had passed before the hold and are not back yet:
            they were on their way, and may reach the site inside the window.
        """
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)
            in_flight = self._in_flight
        if self._shared is not None:
            self._shared.set(hold_for=seconds)
        return in_flight

    def throttled(self, retry_after: float | None = None) -> None:
        """The site said slow down (429/503): cut the rate, and hold for ``retry_after``.

        The rate is cut from the allowed rate or, while there is none, from the rate
        reached over the last ``window`` seconds. Complaints about requests sent
        before the last cut (other workers' pages already in flight) do not cut again.
        """
        with self._lock:
            now = self._clock()
            self._streak = 0
            hold = retry_after if retry_after is not None and retry_after > 0 else None
            if hold is not None:
                self._hold_until = max(self._hold_until, now + hold)
            cut = self._since_cut != 0  # something was sent at the cut rate already
            if cut:
                base = self._rate if self._rate is not None else self._observed(now)
                self._rate = max(self._min_rate, self._cut * (base or 0.0))
                self._since_cut = 0
            rate = self._rate
        if self._shared is not None and (cut or hold is not None):
            interval = 1.0 / rate if cut and rate else None
            self._shared.set(interval=interval, only_slower=True, hold_for=hold)

    def _observed(self, now: float) -> float | None:
        """Acquisitions per second over the window (None: too little history)."""
        self._trim(now)
        if self._first is None or not self._recent:
            return None
        span = max(_MIN_SPAN, min(self._window, now - self._first))
        return len(self._recent) / span

    def succeeded(self) -> None:
        """A page went through: after ``raise_after`` in a row, raise the rate a little."""
        with self._lock:
            self._streak += 1
            if self._streak < self._raise_after:
                return
            self._streak = 0
            if self._rate is None:
                return
            rate: float | None = self._rate * self._raise_by
            reached = self._observed(self._clock())
            if reached is not None and rate is not None and reached < rate / 2:
                rate = None
            self._rate = rate = _capped(rate, self._max_rate)
        if self._shared is not None:
            self._shared.set(interval=1.0 / rate if rate else 0.0)


def _capped(rate: float | None, max_rate: float | None) -> float | None:
    """``rate`` held to ``max_rate`` (an unlimited rate becomes the ceiling)."""
    if max_rate is None:
        return rate
    return max_rate if rate is None else min(rate, max_rate)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class EndpointLimiters:
    """One adaptive :class:`RateLimiter` per endpoint of the site, shared by every worker.

    An endpoint is a name ``ctx.http`` gives a request (the path with its ids
    templated out, or the handler's own name). Each starts unlimited, or at the
    rate a previous run learned, and honours the Retry-After its own answers
    carry. With ``shared``, an endpoint's turns, rate and cool-downs are kept
    where every runner of the job sees them, as the pages' are.

    Args:
        min_rate: no endpoint's rate is cut below this many requests per second.
        learned: rates a previous run learned, by endpoint.
        clock: monotonic seconds.
        shared: the pace of an endpoint, shared with the other runners of the job
            (None: each endpoint's pace is this process's own).
        on_shared_hold: told ``(endpoint, seconds left, requests in flight, turns)``
            when an endpoint meets a hold another runner began (see
            :class:`RateLimiter`).
    """

    def __init__(
        self,
        *,
        min_rate: float = 1.0,
        learned: dict[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: Callable[[str], SharedPace] | None = None,
        on_shared_hold: Callable[[str, float, int, list[float]], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._on_shared_hold = on_shared_hold
        self._min_rate = min_rate
        self._learned = dict(learned or {})
        self._clock = clock
        self._shared = shared
        self._limiters: dict[str, RateLimiter] = {}

    def get(self, endpoint: str) -> RateLimiter:
        """The endpoint's limiter (made on first use)."""
        limiter = self._limiters.get(endpoint)
        if limiter is not None:
            return limiter
        with self._lock:
            limiter = self._limiters.get(endpoint)
            if limiter is None:
                learned = self._learned.get(endpoint)
                shared = self._shared(endpoint) if self._shared is not None else None
                if shared is not None and learned:
                    # a rate learned before slows every runner; it never undoes a cut
                    shared.set(interval=1.0 / learned, only_slower=True)
                told = self._on_shared_hold
                limiter = RateLimiter(
                    learned,
                    min_rate=self._min_rate,
                    clock=self._clock,
                    shared=shared,
                    on_shared_hold=(
                        (lambda left, n, turns: told(endpoint, left, n, turns))
                        if told is not None
                        else None
                    ),
                )
                self._limiters[endpoint] = limiter
            return limiter

    def rates(self) -> dict[str, float | None]:
        """Every endpoint's allowed rate now (None: unlimited)."""
        with self._lock:
            limiters = dict(self._limiters)
        return {name: limiter.rate for name, limiter in sorted(limiters.items())}

    def cooldowns(self) -> dict[str, float]:
        """Seconds left of each endpoint's own cool-down (0: none in force)."""
        with self._lock:
            limiters = dict(self._limiters)
        return {name: limiter.cooldown_left() for name, limiter in sorted(limiters.items())}
