"""The run's event stream: everything that happens to a run (a page failed, the
browser restarted, a cool-down, a halt) is one :class:`RunEvent`, published to
every listener. The store is the default listener (the event log that
``status``, the report and the stress verdict read); a dashboard, metrics or a
user's hook subscribe the same way (``runner.events.subscribe(fn)``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enduro._secrets import Redactor
from enduro.store import EventLog

__all__ = ["RunEvent", "RunEvents", "store_listener"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened to a run (its message already redacted)."""

    ts: float
    run_id: str
    job: str
    kind: str
    message: str = ""
    category: str | None = None
    page_key: str | None = None
    data: dict[str, Any] | None = None


Listener = Callable[[RunEvent], None]


class RunEvents:
    """Publishes a run's events to its listeners, in the order they subscribed.

    The first listener (the store) must not fail: its error propagates, as a
    write to the store would. Later listeners' errors are logged and dropped,
    so a broken hook can't stop a run.
    """

    def __init__(self, run_id: str, job: str, redact: Redactor, clock: Callable[[], float]) -> None:
        self.run_id = run_id
        self.job = job
        self._redact = redact
        self._clock = clock
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(
        self,
        kind: str,
        message: str = "",
        *,
        category: str | None = None,
        page_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Publish an event of this run (secrets redacted from its message)."""
        event = RunEvent(
            self._clock(),
            self.run_id,
            self.job,
            kind,
            self._redact(message),
            category,
            page_key,
            data,
        )
        with self._lock:
            listeners = list(self._listeners)
        for n, listener in enumerate(listeners):
            if n == 0:
                listener(event)
                continue
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed on %s", kind)


def store_listener(store: EventLog) -> Listener:
    """The listener that writes events to the store's event log."""

    def write(event: RunEvent) -> None:
        store.add_event(
            event.kind,
            event.message,
            run_id=event.run_id,
            job=event.job,
            category=event.category,
            page_key=event.page_key,
            data=event.data,
            ts=event.ts,
        )

    return write
