"""Page deadlines: one thread cuts short any page that overruns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["DeadlineWatch"]


class DeadlineWatch:
    """One thread per run that cuts short any page past its deadline.

    Arming costs a page nothing but a lock: the thread sleeps until the
    earliest deadline it knows and, on waking, looks at what is armed now, so
    it does not wake for every page (a timer thread per page cost 4% of the
    throughput).

    Args:
        clock: monotonic seconds. Deadlines are reckoned on it; the thread
            still really waits, for as long as the clock says is left, and
            reads the clock again on waking.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, Callable[[], None]]] = {}
        self._next_token = 0
        self._idle = True
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="enduro-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arm(self, seconds: float, on_expire: Callable[[], None]) -> int:
        """Call ``on_expire`` (on the watchdog thread) in ``seconds`` unless disarmed."""
        with self._cond:
            self._next_token += 1
            self._armed[self._next_token] = (self._clock() + seconds, on_expire)
            if self._idle:
                self._cond.notify()
            return self._next_token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                due = [t for t, (at, _) in self._armed.items() if at <= now]
                expired = [self._armed.pop(t)[1] for t in due]
                if not expired:
                    self._idle = not self._armed
                    wait = None if self._idle else min(at for at, _ in self._armed.values()) - now
                    self._cond.wait(wait)
                    continue
            for on_expire in expired:
                on_expire()
