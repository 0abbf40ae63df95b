"""Server-side faults the target site can inject (the hook; the faults come later).

The site's middleware asks ``FaultPlan.decide`` about every request before the
handler runs. Today the plan never injects anything. It will grow into a
seeded, replayable schedule of the faults DESIGN.md lists for the target-site
layer: latency beyond timeouts, 429 with Retry-After, 5xx and maintenance
pages, connection reset mid-response, truncated body, broken script (JS
error), DOM re-rendered after load (stale elements), missing element and
session expiry; each decision carrying an id so the store can log it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FaultPlan"]


@dataclass(frozen=True)
class FaultPlan:
    """Which fault, if any, the site injects into a request.

    Attributes:
        seed: seeds the plan's own random choices so a stress run replays.
    """

    seed: int = 0

    def decide(self, request_path: str) -> None:
        """Return the fault to inject into a request for ``request_path``.

        Returns None, meaning "serve normally". A later version returns a fault
        description (kind, id, parameters) that the middleware applies.
        """
        return None
