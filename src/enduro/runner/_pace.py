"""The job's pace, shared by every runner through the store: the page rate
limiter's turns, rate and cool-downs (see ``recovery.SharedPace``)."""

from __future__ import annotations

from enduro.store import JobState

__all__ = ["HTTP_PACE", "PAGES", "StorePace"]

PAGES = "pages"
"""The key of the page limiter's pace."""
HTTP_PACE = "http:"
"""The prefix of a ``ctx.http`` endpoint's pace key (``http:<endpoint>``)."""


class StorePace:
    """A :class:`~enduro.recovery.SharedPace` kept in the store for ``job``'s ``key``."""

    def __init__(self, store: JobState, job: str, key: str = PAGES) -> None:
        self._store = store
        self._job = job
        self._key = key

    def take(self, min_interval: float) -> tuple[float, float]:
        # An unlimited pace has no turns: when nothing is held or reserved, a
        # read says so, and the write (a transaction per request) is saved.
        if min_interval <= 0 and self._store.peek_pace(self._job, self._key) == (0.0, 0.0):
            return 0.0, 0.0
        return self._store.take_turn(self._job, self._key, min_interval)

    def hold_left(self) -> float:
        return self._store.hold_left(self._job, self._key)

    def set(
        self,
        *,
        interval: float | None = None,
        only_slower: bool = False,
        hold_for: float | None = None,
    ) -> None:
        self._store.set_pace(
            self._job, self._key, interval=interval, only_slower=only_slower, hold_for=hold_for
        )
