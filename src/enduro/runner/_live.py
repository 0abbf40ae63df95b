"""What a run is doing right now, kept in the store for those who watch it.

Every couple of seconds the supervisor writes one small JSON state per run
(job state ``live:<run_id>``): each worker's page in hand, its browser's age,
pages and starts, and the rate limiter's rate and cool-down. The dashboard
reads it from the store, so it sees every runner of a job, on any host. See
ARCHITECTURE.md, "The runner".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from enduro.recovery import EndpointLimiters, RateLimiter
from enduro.session import SessionManager

__all__ = ["LIVE_SECONDS", "LIVE_STATE_PREFIX", "live_state"]

LIVE_SECONDS = 2.0
"""How often a run writes its live state."""
LIVE_STATE_PREFIX = "live:"
"""+ run id: the job state key of a run's live state."""


def live_state(
    *,
    run_id: str,
    host: str,
    now: float,
    managers: Iterable[SessionManager],
    in_hand: Mapping[str, str],
    limiter: RateLimiter,
    hold_left: float,
    endpoints: EndpointLimiters,
) -> str:
    """The run's live state as JSON text.

    Args:
        now: the store's time.
        in_hand: worker name -> the page it is working on.
        hold_left: the seconds left of a cool-down in the shared pace (another
            runner's Retry-After too).
    """
    workers: list[dict[str, Any]] = []
    for manager in managers:
        session = manager.session
        running = session.running
        workers.append(
            {
                "worker": manager.name,
                "page": in_hand.get(manager.name),
                "browser_running": running,
                "browser_age": round(session.age, 1) if running else None,
                "browser_pages": session.pages_since_start,
                "browser_starts": session.starts,
            }
        )
    cooldowns = endpoints.cooldowns()
    state = {
        "run_id": run_id,
        "host": host,
        "ts": round(now, 3),
        "workers": workers,
        "limiter": {
            "rate": limiter.rate,
            "cooldown": round(max(limiter.cooldown_left(), hold_left), 2),
        },
        "endpoints": {
            name: {"rate": rate, "cooldown": round(cooldowns.get(name, 0.0), 2)}
            for name, rate in endpoints.rates().items()
        },
    }
    return json.dumps(state, separators=(",", ":"))
