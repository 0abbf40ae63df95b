"""Guards that watch a run as a whole: a circuit breaker, a burst detector, a stall
watch, and the broken-job watch.

Each takes a clock (monotonic seconds) so tests move time by hand.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from enduro.errors import first_line, message_shape

__all__ = ["BrokenJobWatch", "BurstDetector", "CircuitBreaker", "StallWatch"]


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


@dataclass(frozen=True)
class BrokenJob:
    """What the broken-job watch saw when it tripped.

    Attributes:
        message: the most frequent first line among the failures.
        pages: how many pages failed with it.
        example: one of those pages' keys.
        failures: the failures counted.
        given_up: keys of the pages given up (final) while it counted: a broken job
            spent their budget, so the run puts them back to pending.
    """

    message: str
    pages: int
    example: str
    failures: int
    given_up: tuple[str, ...]

    def reason(self) -> str:
        return (
            f"the job looks broken: {self.message} "
            f"({self.pages} page{'s' if self.pages != 1 else ''}, e.g. page {self.example})"
        )


class BrokenJobWatch:
    """Notices a job that fails in its own code on page after page.

    It counts the page-side failures (the caller decides which are) since the last
    page done in the run, but only of pages that first failed after that page: a page
    that failed before the last success is a page that fails, not a broken job, so its
    retries (which may come in a row at the end of a run) count for nothing. A page
    done starts the count again. When ``after`` failures are counted it trips, once,
    naming the most frequent kind of message (messages that differ only in their
    numbers are one kind: :func:`~enduro.errors.message_shape`).

    Args:
        after: failures that trip it (0: never).
    """

    def __init__(self, after: int = 10) -> None:
        if after < 0:
            raise ValueError("after must be >= 0")
        self.after = after
        self._lock = threading.Lock()
        self._failed_before: set[str] = set()  # pages that failed before the last page done
        self._streak: dict[str, list[str]] = {}  # page -> its failures' message shapes
        self._shown: dict[str, str] = {}  # shape -> its first message's first line
        self._given_up: list[str] = []
        self._tripped = False

    def done(self) -> None:
        """A page was done: the count starts again."""
        with self._lock:
            self._failed_before.update(self._streak)
            self._streak.clear()
            self._shown.clear()
            self._given_up.clear()

    def failed(self, page: str, message: str, *, final: bool) -> BrokenJob | None:
        """Count a page-side failure of ``page``; what it saw when this one trips it."""
        with self._lock:
            if self.after == 0 or self._tripped or page in self._failed_before:
                return None
            shape = message_shape(message)
            self._shown.setdefault(shape, first_line(message))
            self._streak.setdefault(page, []).append(shape)
            if final:
                self._given_up.append(page)
            failures = sum(len(shapes) for shapes in self._streak.values())
            if failures < self.after:
                return None
            self._tripped = True
            counts = Counter(shape for shapes in self._streak.values() for shape in shapes)
            top = counts.most_common(1)[0][0]  # ties: the first seen
            pages = [key for key, shapes in self._streak.items() if top in shapes]
            return BrokenJob(
                self._shown[top], len(pages), pages[0], failures, tuple(self._given_up)
            )
