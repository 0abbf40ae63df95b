"""One fault, one vocabulary: each scenario fault type, how it is delivered, what it causes.

A scenario names fault *types* (``browser_crash``, ``rate_limiting``...). Each
reaches the run through one or more delivery channels — the tester itself
(a SIGKILL of a process, a DevTools command, a memory sidecar) and the
built-in site's fault *kinds* (``rate_limit``, ``stale_dom``...), which are
different for the browser reference job and for the hybrid job's JSON API —
and is expected to surface as one of the runner's error *categories*
(:data:`enduro.errors.CATEGORIES`). :data:`FAULTS` is that table; the
scenario's checks, the injector's channels and the analysis's reading of the
site's faults are all derived from it:

=================  =========================  ==============================  =====================
fault type         the tester delivers        site kinds (browser job;        error categories
                                              hybrid job's JSON API)
=================  =========================  ==============================  =====================
browser_crash      SIGKILL of the browser                                     browser_crash
driver_crash       SIGKILL of chromedriver                                    driver_dead,
                                                                              browser_crash
tab_crash          DevTools ``Page.crash``                                    page_crash
network_timeout    DevTools offline and       reset, truncate;                network, timeout
                   latency windows            reset, truncate, latency
element_not_found                             stale_dom, missing_element; -   element
javascript_error                              broken_script; -                javascript
rate_limiting                                 rate_limit; rate_limit          rate_limited
auth_loss                                     session_expiry;                 auth_lost
                                              session_expiry, csrf_rotation
server_error                                  server_error, maintenance;      server_error
                                              the same
memory_pressure    a sidecar holds memory                                     (none: new pages
                                                                              wait)
runner_crash       SIGKILL of the runner,                                     (none: the run
                   then a restart (one of                                     resumes)
                   ``runners``)
database_restart   the shared PostgreSQL                                      (none: runners
                   store stopped, held down,                                  wait it out)
                   started again
cookie_wipe        DevTools                                                   auth_lost
                   ``Network.clearBrowserCookies``
=================  =========================  ==============================  =====================

A run of the user's own job (``stress --job``) gets only the types the tester
delivers itself (:data:`JOB_FAULTS`), ``auth_loss`` becoming ``cookie_wipe``;
a hybrid run cannot get the types that live only in pages loaded in the
browser (:data:`BROWSER_PAGE_FAULTS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "BROWSER_PAGE_FAULTS",
    "FAULTS",
    "FAULT_TYPES",
    "HYBRID_SITE_KINDS",
    "JOB_FAULTS",
    "JOB_SUBSTITUTES",
    "LAYERS",
    "SITE_FAULT_TYPES",
    "SITE_KINDS",
    "DeliveryChannel",
    "FaultSpec",
    "fault_type_of",
]

DeliveryChannel = Literal["kill", "devtools", "sidecar", "database", "site"]
"""How the tester delivers a fault itself: a SIGKILL of a process, a command on the
browser's DevTools port, a memory sidecar process, a stop and start of the
PostgreSQL server its runners share; ``"site"``: it does not, the built-in site
serves it."""


@dataclass(frozen=True)
class FaultSpec:
    """One scenario fault type and everything the stress tester knows about it.

    Attributes:
        type: the name a scenario gives it.
        delivery: how the tester delivers it (``"site"``: only the site does).
        target: what the tester's delivery acts on: the process killed
            (``"browser"``, ``"chromedriver"``, ``"runner"``) or the DevTools
            method sent; empty for the site's and the sidecar's.
        layer: the layer of the tester's delivery (``"browser"``, ``"machine"``,
            ``"runner"``); ``None`` when only the site delivers it.
        site_kinds: the site's ``FaultPlan`` kinds serving it on the browser
            reference job's pages, in the order a count fills them.
        hybrid_kinds: the same on the hybrid job's JSON API.
        categories: the error categories it is expected to produce when it hits a
            page (empty: the runner meets it without a page error).
        on_own_job: what a run of the user's own job injects instead of a type
            that needs the site (``None``: the type is dropped).
    """

    type: str
    delivery: DeliveryChannel
    target: str = ""
    layer: str | None = None
    site_kinds: tuple[str, ...] = ()
    hybrid_kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    on_own_job: str | None = None

    def kinds(self, *, hybrid: bool) -> tuple[str, ...]:
        """The site kinds serving it on the hybrid job's API or the browser job's pages."""
        return self.hybrid_kinds if hybrid else self.site_kinds


_SERVER = ("server_error", "maintenance")

FAULTS: Mapping[str, FaultSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            FaultSpec("browser_crash", "kill", "browser", "browser", categories=("browser_crash",)),
            FaultSpec(
                "driver_crash",
                "kill",
                "chromedriver",
                "browser",
                categories=("driver_dead", "browser_crash"),
            ),
            FaultSpec("tab_crash", "devtools", "Page.crash", "browser", categories=("page_crash",)),
            FaultSpec(
                "network_timeout",
                "devtools",
                "Network.emulateNetworkConditions",
                "browser",
                site_kinds=("reset", "truncate"),
                hybrid_kinds=("reset", "truncate", "latency"),
                categories=("network", "timeout"),
            ),
            FaultSpec(
                "element_not_found",
                "site",
                site_kinds=("stale_dom", "missing_element"),
                categories=("element",),
            ),
            FaultSpec(
                "javascript_error",
                "site",
                site_kinds=("broken_script",),
                categories=("javascript",),
            ),
            FaultSpec(
                "rate_limiting",
                "site",
                site_kinds=("rate_limit",),
                hybrid_kinds=("rate_limit",),
                categories=("rate_limited",),
            ),
            FaultSpec(
                "auth_loss",
                "site",
                site_kinds=("session_expiry",),
                hybrid_kinds=("session_expiry", "csrf_rotation"),
                categories=("auth_lost",),
                on_own_job="cookie_wipe",
            ),
            FaultSpec(
                "server_error",
                "site",
                site_kinds=_SERVER,
                hybrid_kinds=_SERVER,
                categories=("server_error",),
            ),
            FaultSpec("memory_pressure", "sidecar", layer="machine"),
            FaultSpec("runner_crash", "kill", "runner", "runner"),
            FaultSpec("database_restart", "database", "postgresql", "machine"),
            FaultSpec(
                "cookie_wipe",
                "devtools",
                "Network.clearBrowserCookies",
                "browser",
                categories=("auth_lost",),
            ),
        )
    }
)
"""Every scenario fault type, in the order schedules and reports list them."""

FAULT_TYPES: tuple[str, ...] = tuple(FAULTS)
"""Every fault type a scenario may name."""

LAYERS: Mapping[str, str] = MappingProxyType(
    {name: spec.layer for name, spec in FAULTS.items() if spec.layer is not None}
)
"""The layer of each fault type the tester delivers itself (the rest are the site's)."""

SITE_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: spec.site_kinds for name, spec in FAULTS.items() if spec.site_kinds}
)
"""The site's kinds that serve each fault type on the browser job's pages."""

HYBRID_SITE_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: spec.hybrid_kinds for name, spec in FAULTS.items() if spec.hybrid_kinds}
)
"""The site's kinds that serve each fault type on the JSON API of a hybrid run."""

JOB_FAULTS: tuple[str, ...] = tuple(LAYERS)
"""The fault types that need no control of the site: a stress run of the user's own
job (``--job``) injects only these (network_timeout as offline and latency windows
in the browser)."""

JOB_SUBSTITUTES: Mapping[str, str] = MappingProxyType(
    {name: spec.on_own_job for name, spec in FAULTS.items() if spec.on_own_job is not None}
)
"""A site fault a user's job gets in another form: a logged-out session comes from
wiping the browser's cookies instead of the site expiring it."""

BROWSER_PAGE_FAULTS: tuple[str, ...] = tuple(
    name
    for name, spec in FAULTS.items()
    if spec.layer is None and spec.site_kinds and not spec.hybrid_kinds
)
"""Fault types that live only in pages loaded in the browser (stale or missing
elements, a broken script): a hybrid run's browser only logs in, so it cannot get them."""


def _site_fault_types() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, spec in FAULTS.items():
        for kind in (*spec.site_kinds, *spec.hybrid_kinds):
            if found.setdefault(kind, name) != name:
                raise AssertionError(f"site kind {kind!r} serves {found[kind]} and {name}")
    return found


SITE_FAULT_TYPES: Mapping[str, str] = MappingProxyType(_site_fault_types())
"""The fault type each of the site's kinds serves (one type per kind, on either job)."""


def fault_type_of(site_kind: str) -> str:
    """The scenario fault type a site fault kind stands for (the kind itself if none)."""
    return SITE_FAULT_TYPES.get(site_kind, site_kind)
