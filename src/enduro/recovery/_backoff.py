"""Retry delays: exponential backoff with jitter, randomness injected."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Delay before retry ``n`` (1-based): ``base * 2**(n-1)``, capped, with jitter.

    Args:
        base: the first delay, in seconds.
        cap: the longest delay, in seconds.
        jitter: the fraction of the delay drawn at random (0.25: ±12.5%).
        rng: the random source (seed it to replay a run).
    """

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt``."""
        exponent = min(max(0, attempt - 1), 60)  # 2**60 s is past any cap
        raw = min(self.cap, self.base * 2.0**exponent)
        return max(0.0, float(raw) * (1 + self.jitter * (self.rng.random() - 0.5)))
