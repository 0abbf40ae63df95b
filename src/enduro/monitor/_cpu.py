"""The machine's CPU use between two samples, whichever thread takes them.

``psutil.cpu_percent(interval=None)`` measures since the previous call *on
the same thread* (psutil ≥ 5.9.6 keeps one window per thread), and its first
call on a thread returns 0.0. A monitor samples on its own thread and once
more from whoever closes it, so it keeps its own window instead: machine-wide
busy time over total time since the last reading, by psutil's definition
(``guest`` is already in ``user``; ``idle`` and ``iowait`` are not busy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import psutil

__all__ = ["CpuWindow"]

MIN_WINDOW_SECONDS = 0.5
"""A reading this soon after the last one is measured from the one before it:
a few milliseconds hold too few clock ticks to mean anything."""

_NOT_COUNTED = ("guest", "guest_nice")  # counted in user / nice already (Linux)
_NOT_BUSY = ("idle", "iowait")


class _Mark(NamedTuple):
    at: float
    times: Any  # psutil's scputimes, a named tuple whose fields vary by platform


class CpuWindow:
    """Machine-wide CPU use, in percent of all CPUs, since the previous reading.

    The window opens (is primed) when the object is made; every :meth:`percent`
    measures since then or since the reading before, never over an empty span
    when it can help it.

    Args:
        cpu_times: the machine's cumulative CPU times (default ``psutil.cpu_times``).
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        cpu_times: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cpu_times = cpu_times or (lambda: psutil.cpu_times())
        self._clock = clock
        self._lock = threading.Lock()
        self._last = self._mark()
        self._before_last: _Mark | None = None

    def _mark(self) -> _Mark:
        return _Mark(self._clock(), self._cpu_times())

    def percent(self) -> float:
        """Busy share of all CPUs since the last reading, rounded to 0.1 (as psutil)."""
        with self._lock:
            now = self._mark()
            if now.at - self._last.at >= MIN_WINDOW_SECONDS or self._before_last is None:
                since = self._last
                self._before_last, self._last = self._last, now
            else:
                since = self._before_last  # too short: measure from the reading before
                self._last = now
        return busy_percent(since.times, now.times)


def busy_percent(before: Any, after: Any) -> float:
    """Busy share, in percent, between two cumulative CPU-times readings."""
    deltas = {
        field: max(0.0, float(b) - float(a))
        for field, a, b in zip(before._fields, before, after, strict=True)
    }
    total = sum(v for field, v in deltas.items() if field not in _NOT_COUNTED)
    busy = total - sum(deltas.get(field, 0.0) for field in _NOT_BUSY)
    if total <= 0:
        return 0.0
    return round(100.0 * busy / total, 1)
