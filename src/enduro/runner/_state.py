"""What a run's parts share while it goes: the progress counters, the flags that
stop or pause the workers, the halt, and how the run ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Progress", "RunControl", "RunResult"]


@dataclass
class Progress:
    """Counters for a progress display (a snapshot; the store is the truth)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    done_this_run: int = 0
    restarts: int = 0
    errors: int = 0
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunResult:
    """How a run ended.

    Attributes:
        status: ``finished`` (every page done), ``failed`` (some pages failed),
            ``interrupted`` (stopped by a signal) or ``halted`` (could not go on).
        exit_code: 0, 1, 1 and 130 for those statuses.
        broken: halted because the job looks broken (``reason`` says what fails,
            how often and an example page; fix the job and run it again).
    """

    run_id: str
    status: str
    exit_code: int
    reason: str
    progress: Progress
    counts: dict[str, int]
    broken: bool = False


class RunControl:
    """The run's shared flags and counters (one per run, shared by its workers).

    Args:
        on_progress: called with the :class:`Progress` after every page, error
            and restart.
        on_halt: called with the reason (redacted) whenever the run is halted.
        redact: hides secrets in a halt's reason (it is printed, logged and stored).
    """

    def __init__(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        on_halt: Callable[[str], None] | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.stop = threading.Event()
        """Set: the workers finish the page in hand and stop."""
        self.hard_stop = threading.Event()
        """Set: the pages in hand are abandoned (their browsers were killed)."""
        self.memory_ok = threading.Event()
        """Clear while memory is short: no new pages start."""
        self.sites_ok = threading.Event()
        """Clear while a burst of errors is probed: no new pages start."""
        self.memory_ok.set()
        self.sites_ok.set()
        self.lock = threading.Lock()
        self.progress = Progress()
        self.halt_reason = ""
        self.broken = False
        """The halt kept is the broken-job watch's."""
        self._on_progress = on_progress or (lambda progress: None)
        self._on_halt = on_halt or (lambda reason: None)
        self._redact = redact

    def may_start_pages(self) -> bool:
        return self.memory_ok.is_set() and self.sites_ok.is_set()

    def halt(self, reason: str, *, broken: bool = False) -> None:
        """Stop the run, saying why (the first reason is the one kept; ``broken``: it
        is the broken-job watch's)."""
        reason = self._redact(reason)
        with self.lock:
            if not self.halt_reason:
                self.halt_reason = reason
                self.broken = broken
        self._on_halt(reason)
        self.stop.set()

    def count(self, **changes: int) -> None:
        """Add to the progress counters (``done=1, done_this_run=1``, ...)."""
        with self.lock:
            for name, delta in changes.items():
                setattr(self.progress, name, getattr(self.progress, name) + delta)

    def pages_left(self) -> int:
        with self.lock:
            p = self.progress
            return p.total - p.done - p.failed

    def report(self) -> None:
        """Tell the progress display."""
        self._on_progress(self.progress)
