"""Server-side faults the target site injects: a seeded, replayable plan.

The site's middleware asks ``FaultPlan.decide`` about every request a fault
can target, before the handler runs, and applies the ``Fault`` it gets back
(app.py does the applying, for real: sleeps, 429s, connection resets...).

Which request each kind hits (the request kinds ``decide`` is told about)::

    "document"  GET /matches?page=N with a live session and a valid page:
                latency, rate_limit, server_error, maintenance, reset,
                stale_dom, missing_element, session_expiry
    "api"       GET /api/matches?page=N with a live session and a valid page:
                truncate
    "script"    GET /static/matches.js (its page is the one of the /matches
                page that asked for it, from the Referer): broken_script
    "hybrid"    any /api/v2/* request (GET or POST) with a live session (its
                page: the site page of a list call's first item, or of the
                match a detail call asks about; None for the batch call):
                latency, rate_limit, server_error, maintenance, reset,
                truncate, session_expiry, csrf_rotation

Decisions, in order of precedence, for each request of a kind above:

1. ``schedule``: the first ``ScheduledFault`` that matches the request (kind of
   request, page), has let ``after`` matching requests through and has not
   yet fired ``times`` times.
2. ``expire_session_every=N``: every N-th page load (a document request or a
   hybrid list call, ``page_load`` below; counting all of them, faulted or not)
   gets ``session_expiry``.
3. ``rates``: one uniform draw per request, laid over the rates of the kinds
   that target this request in ``FAULT_KINDS`` order, so each kind is served
   with exactly its rate (the rates of the kinds that target one request kind
   may add up to 1 at most).

Exactly one number is drawn from the plan's ``random.Random(seed)`` per
request of a kind above, whatever is decided, so the same seed and the same
sequence of requests give the same faults, and a schedule laid over random
faults leaves the random draws of every other request where they were.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "REQUEST_KINDS",
    "Fault",
    "FaultPlan",
    "ScheduledFault",
]

FAULT_KINDS = (
    "latency",
    "rate_limit",
    "server_error",
    "maintenance",
    "reset",
    "truncate",
    "broken_script",
    "stale_dom",
    "missing_element",
    "session_expiry",
    "csrf_rotation",
)
"""Every fault the site can inject (the scenario fault type each serves:
:data:`enduro.stress.vocabulary.SITE_FAULT_TYPES`)."""

REQUEST_KINDS = ("document", "api", "script", "hybrid")
"""The requests a fault can target: see the module docstring."""

_DOCUMENT_AND_HYBRID = ("document", "hybrid")
FAULT_TARGETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "latency": _DOCUMENT_AND_HYBRID,
        "rate_limit": _DOCUMENT_AND_HYBRID,
        "server_error": _DOCUMENT_AND_HYBRID,
        "maintenance": _DOCUMENT_AND_HYBRID,
        "reset": _DOCUMENT_AND_HYBRID,
        "truncate": ("api", "hybrid"),
        "broken_script": ("script",),
        "stale_dom": ("document",),
        "missing_element": ("document",),
        "session_expiry": _DOCUMENT_AND_HYBRID,
        "csrf_rotation": ("hybrid",),
    }
)
"""The kinds of request each fault kind hits."""

# Fraction of the body sent before a reset or a truncation cuts the connection.
_CUT_FRACTION = 0.5


@dataclass(frozen=True)
class Fault:
    """One fault the plan handed out.

    Attributes:
        id: ``"f000001"``, sequential per plan.
        kind: one of ``FAULT_KINDS``.
        path: the request path with its query, e.g. ``"/matches?page=5"``.
        page: the page the request was for, if any.
        at: ``time.time()`` when it was decided.
        params: how to apply it: ``{"delay": 3.0}`` (latency),
            ``{"retry_after": 2}`` (rate_limit, maintenance), ``{"status": 500}``
            (server_error), ``{"fraction": 0.5}`` (reset, truncate), else empty.
    """

    id: str
    kind: str
    path: str
    page: int | None
    at: float
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduledFault:
    """A fault served on given requests rather than at random.

    Attributes:
        kind: one of ``FAULT_KINDS``.
        page: only requests for this page (None: any page).
        times: how many matching requests get it.
        after: let this many matching requests through first.
        request: only requests of this kind (None: every kind the fault targets),
            e.g. ``"hybrid"`` for a session expiry the browser's pages never get.
    """

    kind: str
    page: int | None = None
    times: int = 1
    after: int = 0
    request: str | None = None


class _Slot:
    """Delivery state of one ScheduledFault."""

    __slots__ = ("fired", "seen", "spec")

    def __init__(self, spec: ScheduledFault) -> None:
        self.spec = spec
        self.seen = 0
        self.fired = 0

    def matches(self, kind_of_request: str, page: int | None) -> bool:
        if kind_of_request not in FAULT_TARGETS[self.spec.kind]:
            return False
        if self.spec.request is not None and self.spec.request != kind_of_request:
            return False
        return self.spec.page is None or self.spec.page == page


class FaultPlan:
    """Which fault, if any, the site injects into each request; thread-safe.

    Args:
        seed: seeds the plan's one ``random.Random``, so a run replays.
        rates: per-request probability of each kind on the request it targets.
        schedule: faults served on given requests; they take precedence.
        expire_session_every: expire the session on every N-th page load
            (document request or hybrid list call; 0: never).
        retry_after: seconds a 429 or 503 asks the client to wait (the header
            carries it rounded up to whole seconds).
        latency: seconds the ``latency`` fault holds the request back.

    Raises:
        ValueError: on an unknown kind, a rate outside [0, 1], rates of the
            kinds that target one request kind adding up to more than 1, a
            negative ``times``, ``after``, ``expire_session_every``,
            ``retry_after`` or ``latency``, or a scheduled page below 1.
    """

    def __init__(
        self,
        seed: int = 0,
        rates: Mapping[str, float] = MappingProxyType({}),
        schedule: Sequence[ScheduledFault] = (),
        expire_session_every: int = 0,
        retry_after: float = 2.0,
        latency: float = 3.0,
    ) -> None:
        self._rates = _checked_rates(rates)
        _check_schedule(schedule)
        if not expire_session_every >= 0:
            raise ValueError(f"expire_session_every must be >= 0, got {expire_session_every!r}")
        if not retry_after >= 0 or math.isinf(retry_after):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        if not latency >= 0 or math.isinf(latency):
            raise ValueError(f"latency must be a finite number >= 0, got {latency!r}")
        self.seed = seed
        self.schedule: tuple[ScheduledFault, ...] = tuple(schedule)
        self.expire_session_every = expire_session_every
        self.retry_after = retry_after
        self.latency = latency
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._slots = [_Slot(spec) for spec in self.schedule]
        self._page_loads = 0
        self._delivered: list[Fault] = []

    def __repr__(self) -> str:
        return (
            f"FaultPlan(seed={self.seed!r}, rates={dict(self._rates)!r}, "
            f"schedule={list(self.schedule)!r}, "
            f"expire_session_every={self.expire_session_every!r}, "
            f"retry_after={self.retry_after!r}, latency={self.latency!r})"
        )

    @property
    def rates(self) -> Mapping[str, float]:
        """The per-request rates, by kind (kinds at rate 0 left out)."""
        return MappingProxyType(self._rates)

    @property
    def retry_after_header(self) -> int:
        """``retry_after`` as the whole seconds the Retry-After header carries."""
        return math.ceil(self.retry_after)

    def decide(
        self,
        kind_of_request: str,
        path: str,
        page: int | None,
        *,
        page_load: bool | None = None,
    ) -> Fault | None:
        """Return the fault to inject into this request, or None to serve it normally.

        Args:
            kind_of_request: one of ``REQUEST_KINDS``.
            path: the request path with its query (recorded in the fault).
            page: the page the request is for, if any.
            page_load: whether the request loads a page, for
                ``expire_session_every`` (None: documents do, nothing else
                does; the site passes True for a hybrid list call).

        Raises:
            ValueError: if ``kind_of_request`` is not one of ``REQUEST_KINDS``,
                or ``page_load`` is True for a kind ``session_expiry`` does not hit.
        """
        if kind_of_request not in REQUEST_KINDS:
            raise ValueError(
                f"kind_of_request must be one of {REQUEST_KINDS}, got {kind_of_request!r}"
            )
        if page_load is None:
            page_load = kind_of_request == "document"
        elif page_load and kind_of_request not in FAULT_TARGETS["session_expiry"]:
            raise ValueError(
                f"page_load=True is for document or hybrid requests, not {kind_of_request!r}"
            )
        with self._lock:
            draw = self._rng.random()  # always exactly one draw: the stream stays aligned
            kind = self._scheduled(kind_of_request, page)
            if page_load:
                self._page_loads += 1
                every = self.expire_session_every
                if kind is None and every and self._page_loads % every == 0:
                    kind = "session_expiry"
            if kind is None:
                kind = self._random(kind_of_request, draw)
            if kind is None:
                return None
            fault = Fault(
                id=f"f{len(self._delivered) + 1:06d}",
                kind=kind,
                path=path,
                page=page,
                at=time.time(),
                params=self._params(kind),
            )
            self._delivered.append(fault)
            return fault

    def rearm(self) -> None:
        """Serve the schedule again from the start (a new pass over the pages);
        the rates' random stream and the faults handed out so far are kept."""
        with self._lock:
            self._slots = [_Slot(spec) for spec in self.schedule]

    @property
    def delivered(self) -> list[Fault]:
        """A copy of every fault handed out, in order."""
        with self._lock:
            return list(self._delivered)

    def counts(self) -> dict[str, int]:
        """Faults handed out per kind (kinds never served are left out)."""
        with self._lock:
            return dict(Counter(fault.kind for fault in self._delivered))

    # --- internals (called with the lock held) --------------------------------

    def _scheduled(self, kind_of_request: str, page: int | None) -> str | None:
        chosen: str | None = None
        for slot in self._slots:
            if not slot.matches(kind_of_request, page):
                continue
            slot.seen += 1
            spec = slot.spec
            if chosen is None and slot.seen > spec.after and slot.fired < spec.times:
                slot.fired += 1
                chosen = spec.kind
        return chosen

    def _random(self, kind_of_request: str, draw: float) -> str | None:
        edge = 0.0
        for kind in FAULT_KINDS:
            rate = self._rates.get(kind, 0.0)
            if kind_of_request not in FAULT_TARGETS[kind] or rate == 0.0:
                continue
            edge += rate
            if draw < edge:
                return kind
        return None

    def _params(self, kind: str) -> Mapping[str, Any]:
        if kind == "latency":
            return {"delay": self.latency}
        if kind in ("rate_limit", "maintenance"):
            return {"retry_after": self.retry_after_header}
        if kind == "server_error":
            return {"status": 500}
        if kind in ("reset", "truncate"):
            return {"fraction": _CUT_FRACTION}
        return {}


def _checked_rates(rates: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for kind, rate in rates.items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate of {kind!r} must be within [0, 1], got {rate!r}")
        if rate:
            checked[kind] = float(rate)
    for kind_of_request in REQUEST_KINDS:
        total = sum(r for k, r in checked.items() if kind_of_request in FAULT_TARGETS[k])
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"rates of the faults on {kind_of_request} requests add up to {total:g} (> 1)"
            )
    return checked


def _check_schedule(schedule: Sequence[ScheduledFault]) -> None:
    for spec in schedule:
        if spec.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {spec.kind!r} in schedule (known: {', '.join(FAULT_KINDS)})"
            )
        if spec.times < 0:
            raise ValueError(f"times must be >= 0, got {spec.times!r} for {spec.kind!r}")
        if spec.after < 0:
            raise ValueError(f"after must be >= 0, got {spec.after!r} for {spec.kind!r}")
        if spec.page is not None and spec.page < 1:
            raise ValueError(f"page must be >= 1 or None, got {spec.page!r} for {spec.kind!r}")
        if spec.request is not None and spec.request not in FAULT_TARGETS[spec.kind]:
            raise ValueError(
                f"{spec.kind!r} does not hit {spec.request!r} requests "
                f"(it hits {', '.join(FAULT_TARGETS[spec.kind])})"
            )
