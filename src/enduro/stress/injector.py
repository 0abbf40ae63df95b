"""The failure injector: a scenario's faults as a seeded, replayable schedule.

:class:`FailureInjector` turns a :class:`~enduro.stress.scenario.StressTestConfig`
into a :class:`FaultSchedule` and delivers nothing itself (the tester does).
Each fault type reaches the run through the channels
:data:`enduro.stress.vocabulary.FAULTS` gives it: its own layer (browser,
machine, runner) where the tester delivers it, then the site's kinds. The
tester's own deliveries take these parameters:

==================  ===========================================================
fault type          params
==================  ===========================================================
browser_crash       ``{"process": "browser", "signal": "SIGKILL"}``
driver_crash        ``{"process": "chromedriver", "signal": "SIGKILL"}``
network_timeout     offline and latency windows, in turn: ``{"seconds": 2.0}``,
                    ``{"seconds": 6.0, "latency_ms": 2000}``
memory_pressure     ``{"hold": memory_hold}``
runner_crash        ``{"signal": "SIGKILL"}``, and ``"runner": n`` (0-based) with
                    several ``runners``: the one it hits, each in turn in a
                    seeded order (the next still running if that one has
                    finished)
database_restart    ``{"mode": "fast", "hold": database_hold}``: ``pg_ctl stop
                    -m fast``, down for ``hold`` seconds, started again
==================  ===========================================================

A hybrid scenario (``config.hybrid``) takes the site's faults on its JSON API
instead (its ``hybrid_kinds``: resets, truncated bodies and latency for
network_timeout, CSRF rotation beside session expiry for auth_loss), every one
of them pinned at least once, at a random request of its page (a lapse in
the middle of a page, not only on its list call); the rest of a count is a
rate per API request (the job makes :func:`calls_per_page` of them a page).

How many of each type: :meth:`StressTestConfig.injection_counts`. A type's
count is spread over its channels in that order, so a count
of 1 goes to the first. Browser, machine and runner faults are
:attr:`FaultSchedule.injections`, each due once ``after_pages`` pages are done,
drawn uniformly from the first four fifths of the pages (a cycling scenario
replays them on every pass over its pages);
runner crashes lie at least ``RUNNER_CRASH_SPACING`` pages apart. A site
fault's guaranteed minimum is pinned to a page
(:attr:`FaultSchedule.site_injections`, served by the site's ``FaultPlan``
schedule on that page's first request, distinct pages while there are enough),
so each named type is delivered for sure; the rest of its count becomes a
per-request rate (count / pages) in :attr:`FaultSchedule.site_rates`. A
scenario of the user's own job (``config.job``) has no site channels: its
whole count goes to the browser, machine or runner.

Every draw comes from one ``random.Random(seed)`` in a fixed order: the same
scenario and seed give the same schedule, byte for byte in JSON.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from enduro.stress.reference_hybrid import calls_per_page
from enduro.stress.scenario import RUNNER_CRASH_SPACING, StressTestConfig
from enduro.stress.site.faults import FAULT_TARGETS, REQUEST_KINDS, FaultPlan, ScheduledFault
from enduro.stress.vocabulary import FAULT_TYPES, FAULTS

__all__ = [
    "LATENCY_WINDOW",
    "OFFLINE_SECONDS",
    "FailureInjector",
    "FaultSchedule",
    "Injection",
]

OFFLINE_SECONDS = 2.0
"""Seconds a network_timeout's offline window lasts in the browser."""

LATENCY_WINDOW = {"seconds": 6.0, "latency_ms": 2000}
"""A network_timeout's latency window: every request of the browser's page
waits ``latency_ms`` more, for ``seconds``."""

_FORMAT = 1  # version of the schedule's JSON


@dataclass(frozen=True)
class Injection:
    """One planned fault.

    Attributes:
        id: ``"i0001"`` (``"s0001"`` for a site fault pinned to a page), in schedule order.
        type: an entry of ``FAULT_TYPES``.
        layer: ``"site"``, ``"browser"``, ``"machine"`` or ``"runner"``.
        after_pages: deliver once this many pages are done (a pinned site fault:
            its page - 1, for information; the site serves it on the page itself).
        params: how to deliver it: ``{"seconds": 2.0}`` (offline window),
            ``{"hold": 20.0}`` (memory), ``{"process": "chromedriver"}``,
            ``{"kind": "stale_dom", "page": 7}`` (pinned site fault).
    """

    id: str
    type: str
    layer: str
    after_pages: int
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The injection as plain JSON-ready data."""
        return {
            "id": self.id,
            "type": self.type,
            "layer": self.layer,
            "after_pages": self.after_pages,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Injection:
        """Rebuild an injection from :meth:`to_dict`'s output."""
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            layer=str(data["layer"]),
            after_pages=int(data["after_pages"]),
            params=dict(data.get("params", {})),
        )


@dataclass(frozen=True)
class FaultSchedule:
    """Every fault a run is to get; saved beside the results so the run replays.

    Attributes:
        seed: the seed it was drawn from.
        pages: the scenario's pages (rates are per request over these).
        injections: browser, machine and runner faults, by ``after_pages``.
        site_rates: per-request probability of each site ``FaultPlan`` kind.
        expire_session_every: the site expires the session on every N-th page
            request (0: never).
        site_injections: site faults pinned to a page, by page.
        hybrid: the site's faults hit the JSON API of the hybrid job.
        requests_per_page: site requests each page makes (what a rate is per).
    """

    seed: int
    pages: int
    injections: tuple[Injection, ...]
    site_rates: Mapping[str, float] = field(default_factory=dict, hash=False)
    expire_session_every: int = 0
    site_injections: tuple[Injection, ...] = ()
    hybrid: bool = False
    requests_per_page: int = 1

    def planned(self) -> dict[str, int]:
        """Expected faults per type (types with none left out), in FAULT_TYPES order.

        Scheduled and pinned faults count one each; a site rate counts
        ``rate * pages`` rounded (per pass over the pages, for a cycling
        scenario), and ``expire_session_every`` adds ``pages // N`` auth_loss.
        """
        counts = dict.fromkeys(FAULT_TYPES, 0)
        for injection in (*self.injections, *self.site_injections):
            counts[injection.type] += 1
        for fault_type, spec in FAULTS.items():
            rate = sum(self.site_rates.get(kind, 0.0) for kind in spec.kinds(hybrid=self.hybrid))
            counts[fault_type] += round(rate * self.pages * self.requests_per_page)
        if self.expire_session_every:
            counts["auth_loss"] += self.pages // self.expire_session_every
        return {fault_type: n for fault_type, n in counts.items() if n}

    def total_planned(self) -> int:
        """Expected faults of every type together."""
        return sum(self.planned().values())

    def site_plan(self, retry_after: float = 2.0, latency: float = 3.0) -> FaultPlan:
        """The site's ``FaultPlan`` serving this schedule's site faults (a fresh one each call).

        Args:
            retry_after: seconds a 429 or maintenance page asks the client to wait.
            latency: seconds of the site's ``latency`` fault (not scheduled here).
        """
        pinned = [
            ScheduledFault(
                kind=str(i.params["kind"]),
                page=int(i.params["page"]),
                after=int(i.params.get("after", 0)),
                request="hybrid" if self.hybrid else None,
            )
            for i in self.site_injections
        ]
        return FaultPlan(
            seed=self.seed,
            rates=self.site_rates,
            schedule=pinned,
            expire_session_every=self.expire_session_every,
            retry_after=retry_after,
            latency=latency,
        )

    def to_json(self) -> str:
        """The schedule as JSON text (the same schedule always gives the same text)."""
        data = {
            "format": _FORMAT,
            "seed": self.seed,
            "pages": self.pages,
            "expire_session_every": self.expire_session_every,
            "site_rates": dict(self.site_rates),
            "injections": [i.to_dict() for i in self.injections],
            "site_injections": [i.to_dict() for i in self.site_injections],
        }
        if self.hybrid:  # a browser run's schedule keeps its old shape, byte for byte
            data.update(hybrid=True, requests_per_page=self.requests_per_page)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FaultSchedule:
        """Read a schedule written by :meth:`to_json`.

        Raises:
            ValueError: if the text is not such a schedule.
        """
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise ValueError(f"unknown schedule format {data.get('format')!r}")
            return cls(
                seed=int(data["seed"]),
                pages=int(data["pages"]),
                injections=tuple(Injection.from_dict(i) for i in data["injections"]),
                site_rates=MappingProxyType(
                    {str(k): float(v) for k, v in data["site_rates"].items()}
                ),
                expire_session_every=int(data["expire_session_every"]),
                site_injections=tuple(Injection.from_dict(i) for i in data["site_injections"]),
                hybrid=bool(data.get("hybrid", False)),
                requests_per_page=int(data.get("requests_per_page", 1)),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a fault schedule: {exc!r}") from exc


class FailureInjector:
    """Plans a scenario's faults: which, at which layer, and when.

    Args:
        config: the scenario; its ``seed`` seeds every draw.
    """

    def __init__(self, config: StressTestConfig) -> None:
        self._config = config
        self._victims = self._draw_victims()

    def schedule(self) -> FaultSchedule:
        """The scenario's fault schedule; the same for the same config and seed."""
        config = self._config
        rng = random.Random(config.seed)
        self._victims = self._draw_victims()
        low, high = self._window()
        per_page = self.requests_per_page()
        timed: list[tuple[int, str, str, dict[str, Any]]] = []
        pins: list[tuple[str, str]] = []
        rates: dict[str, float] = {}
        for fault_type, count in config.injection_counts().items():
            channels = _channels(fault_type, site=config.job is None, hybrid=config.hybrid)
            shares = _spread(count, len(channels))
            pinned = _spread(config.minimum(fault_type), len(channels))
            for (layer, kind), n, least in zip(channels, shares, pinned, strict=True):
                if layer == "site":
                    if config.hybrid and config.minimum(fault_type):
                        least = max(1, least)  # every API fault of a named type, once at least
                    pins += [(fault_type, kind)] * least
                    if n > least:
                        rates[kind] = (n - least) / (config.pages * per_page)
                    continue
                if fault_type == "runner_crash":
                    spots = _spaced(rng, n, low, high, RUNNER_CRASH_SPACING)
                else:
                    spots = [rng.randint(low, high) for _ in range(n)]
                timed += [
                    (spot, fault_type, layer, self._params(fault_type, i))
                    for i, spot in enumerate(spots)
                ]
        timed.sort(key=lambda item: item[0])  # stable: ties keep FAULT_TYPES order
        injections = tuple(
            Injection(f"i{n:04d}", fault_type, layer, spot, params)
            for n, (spot, fault_type, layer, params) in enumerate(timed, start=1)
        )
        pages = _pages(rng, len(pins), config.pages)
        placed = sorted(zip(pages, pins, strict=True), key=lambda item: item[0])
        site_injections = tuple(
            Injection(
                f"s{n:04d}",
                fault_type,
                "site",
                page - 1,
                {"kind": kind, "page": page}
                # a hybrid page makes many requests: the fault hits one of them at random
                | ({"after": rng.randrange(per_page)} if config.hybrid else {}),
            )
            for n, (page, (fault_type, kind)) in enumerate(placed, start=1)
        )
        return FaultSchedule(
            seed=config.seed,
            pages=config.pages,
            injections=injections,
            site_rates=MappingProxyType(_capped(rates)),
            expire_session_every=config.expire_session_every,
            site_injections=site_injections,
            hybrid=config.hybrid,
            requests_per_page=per_page,
        )

    def _draw_victims(self) -> list[int]:
        """The runners the runner crashes hit, in turn: each of them once in a seeded
        order, then again (its own draws: the rest of the schedule stays as it was)."""
        order = list(range(self._config.runners))
        random.Random(self._config.seed + 1).shuffle(order)
        return order

    def requests_per_page(self) -> int:
        """Site requests one page of the scenario's job makes (the hybrid job's API
        calls; one document for the browser job)."""
        if not self._config.hybrid:
            return 1
        return calls_per_page("full", self._config.rows)

    def site_plan(self) -> FaultPlan:
        """A fresh site ``FaultPlan`` serving the schedule's site faults."""
        return self.schedule().site_plan(retry_after=self._config.retry_after)

    def _window(self) -> tuple[int, int]:
        """The range ``after_pages`` is drawn from: work is left after each fault
        (a cycling scenario replays the schedule on every pass, counting pages
        from the pass's start)."""
        pages = self._config.pages
        if pages == 1:
            return 0, 0
        # the last fifth of the pages is left fault-free: a fault due after the
        # last page or two can miss a run that is already ending, and needs
        # pages after it for its recovery to be measured
        return 1, max(1, min(pages - 1, math.ceil(pages * 0.8)))

    def _params(self, fault_type: str, n: int) -> dict[str, Any]:
        """How to deliver the ``n``-th (from 0) fault of a type."""
        if fault_type == "browser_crash":
            return {"process": "browser", "signal": "SIGKILL"}
        if fault_type == "driver_crash":
            return {"process": "chromedriver", "signal": "SIGKILL"}
        if fault_type == "network_timeout":
            return {"seconds": OFFLINE_SECONDS} if n % 2 == 0 else dict(LATENCY_WINDOW)
        if fault_type == "memory_pressure":
            return {"hold": self._config.memory_hold}
        if fault_type == "runner_crash":
            if self._config.runners > 1:  # which runner: drawn here, so the schedule says
                return {"signal": "SIGKILL", "runner": self._victims[n % len(self._victims)]}
            return {"signal": "SIGKILL"}
        if fault_type == "database_restart":
            return {"mode": "fast", "hold": self._config.database_hold}
        return {}


def _channels(fault_type: str, *, site: bool = True, hybrid: bool = False) -> list[tuple[str, str]]:
    """Where a fault type's count goes, in order: its own layer, then its site kinds
    (``site=False``: a user's job, where the site is not ours to break; ``hybrid``:
    the kinds that hit the site's JSON API)."""
    spec = FAULTS[fault_type]
    channels = [(spec.layer, fault_type)] if spec.layer is not None else []
    kinds = spec.kinds(hybrid=hybrid) if site else ()
    return channels + [("site", kind) for kind in kinds]


def _spread(count: int, ways: int) -> list[int]:
    """``count`` split over ``ways`` as evenly as possible, the first ones taking the rest."""
    return [count // ways + (1 if i < count % ways else 0) for i in range(ways)]


def _spaced(rng: random.Random, n: int, low: int, high: int, gap: int) -> list[int]:
    """``n`` sorted draws from [low, high], each at least ``gap`` from the next."""
    room = high - low - (gap - 1) * (n - 1)
    if n and room < n - 1:
        raise ValueError(f"{n} draws {gap} apart do not fit in [{low}, {high}]")
    picks = sorted(rng.sample(range(room + 1), n)) if n else []
    return [low + pick + (gap - 1) * i for i, pick in enumerate(picks)]


def _pages(rng: random.Random, n: int, pages: int) -> list[int]:
    """``n`` pages from 1..pages, all distinct while there are enough."""
    chosen: list[int] = []
    while len(chosen) < n:
        chosen += rng.sample(range(1, pages + 1), min(pages, n - len(chosen)))
    return chosen


def _capped(rates: dict[str, float]) -> dict[str, float]:
    """Rates scaled down where the kinds on one request would add up to more than 1."""
    capped = dict(rates)
    for request in REQUEST_KINDS:
        kinds = [kind for kind in capped if request in FAULT_TARGETS[kind]]
        total = sum(capped[kind] for kind in kinds)
        if total > 1.0:
            for kind in kinds:
                capped[kind] = capped[kind] / total * (1 - 1e-12)
    return dict(sorted(capped.items()))
