"""Guards that watch a run as a whole: a circuit breaker, a burst detector, a stall watch.

Each takes a clock (monotonic seconds) so tests move time by hand.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["BurstDetector", "CircuitBreaker", "StallWatch"]


class CircuitBreaker:
    """Opens when ``limit`` failures fall within ``window`` seconds; a success closes it.

    Args:
        limit: failures within the window that open the breaker.
        window: seconds a failure counts for.
        clock: monotonic seconds.
    """

    def __init__(
        self, limit: int = 3, window: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("need limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: deque[float] = deque()

    def failure(self) -> bool:
        """Count a failure; True when the breaker is (now) open."""
        with self._lock:
            now = self._clock()
            self._failures.append(now)
            return self._open(now)

    def success(self) -> None:
        """Forget every failure: the breaker closes."""
        with self._lock:
            self._failures.clear()

    @property
    def open(self) -> bool:
        """Whether ``limit`` failures fall within the last ``window`` seconds."""
        with self._lock:
            return self._open(self._clock())

    def _open(self, now: float) -> bool:
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()
        return len(self._failures) >= self.limit


class BurstDetector:
    """Notices ``threshold`` errors of one category within ``window`` seconds.

    A burst reports once: its count then starts again from zero.

    Args:
        threshold: errors of one category that make a burst.
        window: seconds an error counts for.
        clock: monotonic seconds.
    """

    def __init__(
        self, threshold: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if threshold < 1 or window <= 0:
            raise ValueError("need threshold >= 1 and window > 0")
        self.threshold = threshold
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def record(self, category: str) -> bool:
        """Count an error of ``category``; True when it completes a burst."""
        with self._lock:
            now = self._clock()
            times = self._seen.setdefault(category, deque())
            times.append(now)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.threshold:
                times.clear()
                return True
            return False


class StallWatch:
    """Notices a run that makes no progress: first restart, then halt.

    Args:
        after: seconds without progress before :meth:`check` says ``restart``, and
            again after that before it says ``halt`` (<= 0: never).
        clock: monotonic seconds.
    """

    def __init__(self, after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.after = after
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._restarted_at: float | None = None

    def progressed(self) -> None:
        """A page completed (or the run is idle on purpose): the watch starts over."""
        with self._lock:
            self._last = self._clock()
            self._restarted_at = None

    def check(self) -> str:
        """``""`` normally; ``"restart"`` once when stalled; ``"halt"`` if that did not help."""
        if self.after <= 0:
            return ""
        with self._lock:
            now = self._clock()
            if self._restarted_at is None:
                if now - self._last >= self.after:
                    self._restarted_at = now
                    return "restart"
                return ""
            return "halt" if now - self._restarted_at >= self.after else ""
